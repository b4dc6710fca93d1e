//! Assertions shared by the suite's modules.

use serde_json::Value;

/// Asserts a delivery (or unicast error) event's members.
pub fn assert_delivery(
    event: &Value,
    kind: &str,
    from: &str,
    to: &str,
    notification: &str,
    flags: u64,
    parameter: &Value,
) {
    let what = event.to_string();
    assert_eq!(event["event"], kind, "{what}");
    assert_eq!(event["from"], from, "{what}");
    assert_eq!(event["to"], to, "{what}");
    assert_eq!(event["notification"], notification, "{what}");
    assert_eq!(event["flags"], flags, "{what}");
    assert_eq!(&event["parameter"], parameter, "{what}");
}

/// Asserts a JSON wire message's members (spec 5.2): the type and the
/// notify members, parameter included.
pub fn assert_wire(
    msg: &Value,
    kind: &str,
    from: &str,
    to: &str,
    notification: &str,
    flags: u64,
    parameter: &Value,
) {
    let what = msg.to_string();
    assert_eq!(msg["type"], kind, "{what}");
    assert_eq!(msg["from"], from, "{what}");
    assert_eq!(msg["to"], to, "{what}");
    assert_eq!(msg["notification"], notification, "{what}");
    assert_eq!(msg["flags"], flags, "{what}");
    assert_eq!(&msg["parameter"], parameter, "{what}");
}

/// True for the suite's own round-trip notifications, which observers see
/// like any other.
pub fn is_plumbing(event: &Value) -> bool {
    event["notification"]
        .as_str()
        .is_some_and(|n| n.starts_with("conformance."))
}
