//! The agent's state machine stepped by hand: Leases in, actions out, time an input.
