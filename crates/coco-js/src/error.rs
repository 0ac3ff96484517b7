//! The crate's error enum: what a JavaScript call can end in besides a value.

/// Convenience alias: every fallible function of this crate returns [`JsError`].
pub type Result<T, E = JsError> = std::result::Result<T, E>;

/// Why a JavaScript call produced no value. Every variant is deterministic: the same
/// module, arguments, limits and KV state give the same error on every node. Messages come
/// from the script or the engine and never name host paths.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsError {
    /// The module does not parse (or imports a module: there is no loader).
    #[error("syntax error: {message}")]
    Syntax {
        /// The parser's message.
        message: String,
    },
    /// The module has no export of that name, or the export is not a function.
    #[error("module has no exported function {name:?}")]
    MissingExport {
        /// The requested export.
        name: String,
    },
    /// The script threw and nothing caught it.
    #[error("uncaught exception: {message}")]
    Exception {
        /// `Name: message` for an `Error`, the value itself for anything else thrown.
        message: String,
        /// The JavaScript stack trace, when the thrown value carried one.
        stack: Option<String>,
    },
    /// The interrupt budget ran out (for example an infinite loop).
    #[error("interrupt budget exhausted")]
    BudgetExhausted,
    /// The heap limit was reached.
    #[error("out of memory")]
    OutOfMemory,
    /// The stack limit was reached (for example unbounded recursion).
    #[error("stack overflow")]
    StackOverflow,
    /// The script wrote to a map while the KV binding was read-only, and did not catch it.
    #[error("write to map {map:?} denied: the KV binding is read-only")]
    WriteDenied {
        /// The map written to.
        map: String,
    },
    /// The result (or an argument) is not JSON-compatible: a function, symbol, `BigInt`,
    /// cycle, non-finite number, promise, or nesting too deep.
    #[error("value is not JSON-compatible: {message}")]
    Conversion {
        /// What was wrong.
        message: String,
    },
    /// The engine itself failed (runtime or context creation): not the script's fault.
    #[error("javascript engine failure: {message}")]
    Engine {
        /// What failed.
        message: String,
    },
}
