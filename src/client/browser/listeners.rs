//! DOM event listeners that hold their owner weakly and are removed when
//! dropped.

use std::rc::{Rc, Weak};

use leptos::logging::warn;
use wasm_bindgen::{closure::Closure, JsCast};
use web_sys::{Event, EventTarget};

/// What to do with an event, given the listeners' owner.
pub type Handler<T> = fn(&Rc<T>, &Event);

/// An event name and the closure registered for it.
type Registered = (&'static str, Closure<dyn FnMut(Event)>);

/// An event target and the handlers registered on it.
pub struct Listeners {
    target: EventTarget,
    handlers: Vec<Registered>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        // Removed before the closures are freed, so nothing calls them after.
        for (kind, handler) in &self.handlers {
            let _ = self
                .target
                .remove_event_listener_with_callback(kind, handler.as_ref().unchecked_ref());
        }
    }
}

/// Registers `handlers` on `target`; they hold `owner` weakly.
pub fn listen<T: 'static>(
    owner: &Rc<T>,
    target: EventTarget,
    handlers: &[(&'static str, Handler<T>)],
) -> Listeners {
    let handlers = handlers
        .iter()
        .map(|&(kind, handle)| {
            let weak: Weak<T> = Rc::downgrade(owner);
            let closure = Closure::<dyn FnMut(Event)>::new(move |event: Event| {
                if let Some(owner) = weak.upgrade() {
                    handle(&owner, &event);
                }
            });
            if let Err(error) =
                target.add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref())
            {
                warn!("cannot listen to {kind}: {error:?}");
            }
            (kind, closure)
        })
        .collect();
    Listeners { target, handlers }
}
