//! The server's frames as the browser's own `JSON.parse` reads them: the
//! page carries no JSON reader of its own.

use js_sys::{Array, Reflect, JSON};
use serde_json::Number;
use wasm_bindgen::JsValue;

use crate::protocol::{JsonTree, ServerFrame};

/// Numbers up to this are whole in JavaScript exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Reads a frame the server sent; `None` as for [`ServerFrame::parse`].
pub(super) fn parse(text: &str) -> Option<ServerFrame> {
    ServerFrame::read(&JSON::parse(text).ok()?)
}

impl JsonTree for JsValue {
    fn member(&self, key: &str) -> Option<Self> {
        if !self.is_object() || Array::is_array(self) {
            return None;
        }
        let value = Reflect::get(self, &JsValue::from_str(key)).ok()?;
        (!value.is_undefined()).then_some(value)
    }

    fn is_null(&self) -> bool {
        JsValue::is_null(self)
    }

    fn text(&self) -> Option<String> {
        self.as_string()
    }

    fn count(&self) -> Option<u64> {
        let n = self.as_f64()?;
        (n >= 0.0 && n.fract() == 0.0 && n <= u64::MAX as f64).then_some(n as u64)
    }

    fn flag(&self) -> Option<bool> {
        self.as_bool()
    }

    fn number(&self) -> Option<Number> {
        let n = self.as_f64()?;
        if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
            Some(Number::from(n as i64))
        } else {
            Number::from_f64(n)
        }
    }

    fn items(&self) -> Option<Vec<Self>> {
        Array::is_array(self).then(|| Array::from(self).iter().collect())
    }
}
