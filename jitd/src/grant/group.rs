//! group membership (being written).
