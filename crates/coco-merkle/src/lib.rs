//! coco-merkle (being written).
