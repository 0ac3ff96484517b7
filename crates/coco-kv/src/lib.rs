//! coco-kv (being written).
