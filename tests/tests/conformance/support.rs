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
    assert_notify(
        event,
        ("event", kind),
        from,
        to,
        notification,
        flags,
        parameter,
    );
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
    assert_notify(
        msg,
        ("type", kind),
        from,
        to,
        notification,
        flags,
        parameter,
    );
}

/// The notify members of `value`, and its kind under the member `kind.0`.
fn assert_notify(
    value: &Value,
    kind: (&str, &str),
    from: &str,
    to: &str,
    notification: &str,
    flags: u64,
    parameter: &Value,
) {
    let what = value.to_string();
    assert_eq!(value[kind.0], kind.1, "{what}");
    assert_eq!(value["from"], from, "{what}");
    assert_eq!(value["to"], to, "{what}");
    assert_eq!(value["notification"], notification, "{what}");
    assert_eq!(value["flags"], flags, "{what}");
    assert_eq!(&value["parameter"], parameter, "{what}");
}

/// True for the suite's own round-trip notifications, which observers see
/// like any other.
pub fn is_plumbing(event: &Value) -> bool {
    event["notification"]
        .as_str()
        .is_some_and(|n| n.starts_with("conformance."))
}
