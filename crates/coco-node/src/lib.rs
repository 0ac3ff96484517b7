//! coco-node (being written).
