//! Unit tests of [`decide`](super::decide).
use super::*;
