//! Property tests of [`decide`](super::decide).
