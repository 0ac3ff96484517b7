//! Host functions: Rust functions a caller exposes under `ccf.<path>` (for example
//! `ccf.crypto.isValidX509CertBundle` or governance effects such as
//! `ccf.node.triggerLedgerRekey`), with JSON arguments and results.

use std::fmt;
use std::rc::Rc;

use rquickjs::{Ctx, Exception, Function, Object};

/// A host function: JSON arguments in, JSON result out; `Err(message)` throws an `Error`
/// with that message in JavaScript.
pub type HostFn = Rc<dyn Fn(&[serde_json::Value]) -> Result<serde_json::Value, String>>;

/// The host functions installed for one call. Cheap to clone (reference-counted).
#[derive(Clone, Default)]
pub struct HostFunctions {
    functions: Vec<(String, HostFn)>,
}

impl fmt::Debug for HostFunctions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.functions.iter().map(|(path, _)| path)).finish()
    }
}

impl HostFunctions {
    /// No host functions.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Exposes `function` as `ccf.<path>` (`path` is dot-separated, such as
    /// `"crypto.isValidX509CertBundle"`). Arguments must be JSON-compatible (they are
    /// converted with `JSON.stringify`); `undefined` arrives as `null`.
    ///
    /// # Panics
    /// If `path` is empty, has an empty segment, starts with `kv` or a helper's name, or
    /// is already taken: paths are constants of the caller's code.
    pub fn add(
        &mut self,
        path: &str,
        function: impl Fn(&[serde_json::Value]) -> Result<serde_json::Value, String> + 'static,
    ) -> &mut Self {
        let reserved = ["kv", "strToBuf", "bufToStr", "jsonCompatibleToBuf", "bufToJsonCompatible"];
        let first = path.split('.').next().unwrap_or_default();
        assert!(
            !path.split('.').any(str::is_empty) && !reserved.contains(&first),
            "host function path {path:?} is empty or reserved"
        );
        assert!(
            self.functions.iter().all(|(known, _)| known != path),
            "host function path {path:?} added twice"
        );
        self.functions.push((path.to_owned(), Rc::new(function)));
        self
    }

    /// The paths, in the order the prelude installs them.
    pub(crate) fn paths(&self) -> Vec<String> {
        self.functions.iter().map(|(path, _)| path.clone()).collect()
    }

    /// Adds `native.host(index, argsJson) -> resultJson` to the natives object.
    pub(crate) fn install<'js>(
        &self,
        ctx: &Ctx<'js>,
        native: &Object<'js>,
    ) -> rquickjs::Result<()> {
        let functions: Vec<HostFn> = self.functions.iter().map(|(_, f)| Rc::clone(f)).collect();
        native.set(
            "host",
            Function::new(ctx.clone(), move |ctx: Ctx<'js>, index: u32, args: String| {
                let function =
                    usize::try_from(index)
                        .ok()
                        .and_then(|index| functions.get(index))
                        .ok_or_else(|| Exception::throw_type(&ctx, "unknown host function"))?;
                let args: Vec<serde_json::Value> = serde_json::from_str(&args)
                    .map_err(|e| Exception::throw_type(&ctx, &e.to_string()))?;
                let result =
                    function(&args).map_err(|message| Exception::throw_message(&ctx, &message))?;
                serde_json::to_string(&result)
                    .map_err(|e| Exception::throw_type(&ctx, &e.to_string()))
            })?,
        )
    }
}
