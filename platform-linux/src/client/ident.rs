//! The identity of a callback registered through the ADK-style functions,
//! which their unregister filters compare ([`CallbackFilter`]).

use super::adk::{CallbackFilter, CallbackId};

/// The identity of a callback registered through the ADK-style functions
/// (Rust `fn`s and foreign callbacks alike), for their unregister filters.
#[derive(Clone, Copy)]
pub(crate) enum Ident {
    /// Registered through the idiomatic API.
    Closure,
    /// An ADK notification or unicast-error callback.
    Notify(CallbackId),
    /// An ADK observer.
    Observer(CallbackId),
}

impl Ident {
    /// True when this notification or unicast-error callback matches the
    /// ADK filter.
    pub(crate) fn matches_notify(&self, filter: CallbackFilter) -> bool {
        match self {
            Ident::Notify(id) => filter.matches(*id),
            // A filter that matches any callback matches closures too.
            Ident::Closure => filter.is_any(),
            Ident::Observer(_) => false,
        }
    }

    /// True when this observer matches the ADK filter.
    pub(crate) fn matches_observer(&self, filter: CallbackFilter) -> bool {
        match self {
            Ident::Observer(id) => filter.matches(*id),
            Ident::Closure => filter.is_any(),
            Ident::Notify(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adk_identity_filters() {
        let filter = |callback, data| CallbackFilter { callback, data };
        let id = Ident::Notify(CallbackId {
            callback: 0x1000,
            data: 5,
        });
        assert!(id.matches_notify(CallbackFilter::ANY));
        assert!(id.matches_notify(filter(Some(0x1000), None)));
        assert!(id.matches_notify(filter(Some(0x1000), Some(5))));
        assert!(id.matches_notify(filter(None, Some(5))));
        assert!(!id.matches_notify(filter(Some(0x2000), None)));
        assert!(!id.matches_notify(filter(Some(0x1000), Some(6))));
        assert!(Ident::Closure.matches_notify(CallbackFilter::ANY));
        assert!(!Ident::Closure.matches_notify(filter(Some(0x1000), None)));
        assert!(!id.matches_observer(CallbackFilter::ANY));
    }
}
