//! coco-host (being written).
