//! The `purple-rain` binary run as a process, as a user's shell runs it: against the Redis the
//! test command starts on 127.0.0.1:6379, and against a port where nothing listens.

mod disk;
mod errors;
mod inspect;
mod interrupt;
mod net;
mod roundtrip;
mod support;
mod terminal;
