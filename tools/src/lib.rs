//! Programs that run the real functions on the local stack for people rather than for `cargo
//! test`: the benchmark (`src/bench`, `scripts/bench`) measures them, the demo (`src/bin/demo`,
//! `scripts/demo`) shows a rotation step by step. Both stand on `rotation-tests`' harness (the
//! stack, the Runtime API emulator, the orchestrator, the proxies).

pub mod bench;
