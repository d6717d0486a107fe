//! `events/` holds one directory per function crate of `functions/`, and every function crate
//! runs its sample events through its binary (see `rotation_tests::events`), so no event file
//! rots unseen and no function ships without them.

use rotation_tests::events::{event_directories, function_crates, repository_root, EventFiles};

#[test]
fn every_events_directory_belongs_to_a_function_crate() {
    let functions = function_crates().expect("functions/ can be listed");
    let strays: Vec<String> = event_directories()
        .expect("events/ can be listed")
        .into_iter()
        .filter(|dir| !functions.contains(dir))
        .collect();
    assert!(
        strays.is_empty(),
        "events/ has directories for no function crate in functions/: {strays:?}"
    );
}

#[test]
fn every_function_crate_has_one_event_per_step() {
    for function in function_crates().expect("functions/ can be listed") {
        if let Err(problem) = EventFiles::load(&function) {
            panic!("{function}: {problem}");
        }
    }
}

/// Only the function's own tests can start its binary (`CARGO_BIN_EXE_<name>`), so each crate
/// must have a test that uses the events harness; this finds it by its import, or by the
/// database conformance suite, whose scenarios include the events'.
#[test]
fn every_function_crate_runs_its_events_through_the_harness() {
    for function in function_crates().expect("functions/ can be listed") {
        let tests_dir = repository_root()
            .join("functions")
            .join(&function)
            .join("tests");
        let runs_events = std::fs::read_dir(&tests_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "rs"))
            .any(|entry| {
                std::fs::read_to_string(entry.path()).is_ok_and(|text| {
                    text.contains("rotation_tests::events::EventFiles")
                        || text.contains("rotation_tests::database_conformance!")
                })
            });
        assert!(
            runs_events,
            "{function} has no test in {} that runs its events (use rotation_tests::events::EventFiles)",
            tests_dir.display()
        );
    }
}
