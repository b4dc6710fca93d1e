//! The conformance suite: every test here runs once per enabled profile
//! (`linux::…` with `--features linux`, `verix::…` with `--features
//! verix-sim`; both by default). Each test gets the profile as a
//! `nfy_tests::Target` and uses only what every profile must do alike; where a
//! profile's own limits matter (connections, registrations, frame size),
//! the test reads them from the target.
//!
//! | module | covers |
//! |---|---|
//! | `delivery` | unicast (library, ADK, JSON wire, TCP), `"1"` with priorities and ties, broadcast, impersonation, observers, order |
//! | `errors` | unicast errors (library, ADK, JSON wire), `ERR_APP_ID`, unregister guarantees |
//! | `input` | bad input on the wire, frame size limit |
//! | `limits` | the profile's connection and registration limits, one server per system |

// Test code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// With no profile feature, the suite is compiled but instantiated nowhere.
#![cfg_attr(
    not(any(feature = "linux", feature = "verix-sim")),
    allow(dead_code, unused_imports)
)]

mod delivery;
mod errors;
mod input;
mod limits;
mod support;

#[path = "../common/targets.rs"]
mod targets;

/// Instantiates the listed tests once per enabled profile.
macro_rules! suite {
    ($($module:ident :: $test:ident),* $(,)?) => {
        #[cfg(feature = "linux")]
        mod linux {
            $( #[test] fn $test() { crate::$module::$test(&crate::targets::linux()) } )*
        }
        #[cfg(feature = "verix-sim")]
        mod verix {
            $( #[test] fn $test() { crate::$module::$test(&crate::targets::verix()) } )*
        }
    };
}

suite! {
    delivery::unicast_between_processes,
    delivery::unicast_over_the_json_wire,
    delivery::one_goes_to_the_best_priority_and_ties_to_the_latest,
    delivery::broadcast_reaches_every_registration,
    delivery::impersonation,
    delivery::observers_see_every_delivery_and_the_empty_receiver,
    delivery::adk_functions_round_trip,
    errors::unicast_errors_return_the_original,
    errors::app_id_errors,
    errors::unregister_guarantees,
    input::bad_input_leaves_the_server_and_others_unaffected,
    input::frame_size_limit,
    limits::connection_limit_is_reached_and_reported,
    limits::registration_limits_are_reached_and_reported,
    limits::one_server_per_system,
}
