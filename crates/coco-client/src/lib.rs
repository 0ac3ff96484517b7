//! coco-client (being written).
