//! coco-ledger (being written).
