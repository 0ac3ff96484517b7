//! [`JsEngine`]: one QuickJS runtime, a fresh context per call, limits enforced.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use rquickjs::context::intrinsic;
use rquickjs::function::Args;
use rquickjs::{Context, Ctx, Exception, Function, Module, Runtime, Value};

use crate::error::{JsError, Result};
use crate::host::HostFunctions;
use crate::kv::{KvBinding, KvLoan, KvShared, natives};
use crate::limits::JsLimits;

#[cfg(test)]
mod tests;

/// The name modules are compiled under (it appears in stack traces; never a host path).
const MODULE_NAME: &str = "module.js";

const PRELUDE: &str = include_str!("prelude.js");

/// Everything but `Date` (clock, time zone), `Performance` (clock) and `WeakRef`
/// (garbage-collection timing): what remains is deterministic.
type Intrinsics = (
    intrinsic::Eval,
    intrinsic::RegExpCompiler,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::Proxy,
    intrinsic::MapSet,
    intrinsic::TypedArrays,
    intrinsic::Promise,
    intrinsic::DOMException,
);

/// The interrupt budget of the running call, shared with the runtime's interrupt handler.
#[derive(Debug, Default)]
struct Budget {
    remaining: Cell<u64>,
    used: Cell<u64>,
}

impl Budget {
    fn reset(&self, budget: u64) {
        self.remaining.set(budget);
        self.used.set(0);
    }

    /// Called by QuickJS every [`POLLS_PER_STEP`](crate::POLLS_PER_STEP) polls; `true`
    /// interrupts the script.
    fn tick(&self) -> bool {
        self.used.set(self.used.get().saturating_add(1));
        let remaining = self.remaining.get();
        if remaining == 0 {
            return true;
        }
        self.remaining.set(remaining - 1);
        remaining == 1
    }

    fn exhausted(&self) -> bool {
        self.remaining.get() == 0
    }
}

/// A QuickJS engine: one runtime reused across calls, a fresh context per call so calls
/// cannot leak state into each other. Not `Send`: keep one per thread.
pub struct JsEngine {
    limits: JsLimits,
    /// `None` after a call left promise jobs queued: the next call builds a new runtime
    /// so they never run.
    runtime: RefCell<Option<Runtime>>,
    budget: Rc<Budget>,
}

impl std::fmt::Debug for JsEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsEngine").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl JsEngine {
    /// An engine enforcing `limits` on every call.
    ///
    /// # Errors
    /// [`JsError::Engine`] if the limits are out of range or QuickJS cannot start.
    pub fn new(limits: JsLimits) -> Result<Self> {
        limits.validate().map_err(|e| JsError::Engine { message: e.to_string() })?;
        let budget = Rc::new(Budget::default());
        let engine = Self { limits, runtime: RefCell::new(None), budget };
        let runtime = engine.build_runtime()?;
        *engine.runtime.borrow_mut() = Some(runtime);
        Ok(engine)
    }

    /// The limits every call runs under.
    #[must_use]
    pub fn limits(&self) -> JsLimits {
        self.limits
    }

    /// Interrupt-handler calls the last call consumed: the same on every run of the same
    /// call, so it measures a script's cost deterministically.
    #[must_use]
    pub fn steps_used(&self) -> u64 {
        self.budget.used.get()
    }

    fn build_runtime(&self) -> Result<Runtime> {
        let runtime = Runtime::new().map_err(|e| JsError::Engine { message: e.to_string() })?;
        let to_usize = |bytes: u64| usize::try_from(bytes).unwrap_or(usize::MAX);
        runtime.set_memory_limit(to_usize(self.limits.heap_bytes_max));
        runtime.set_max_stack_size(to_usize(self.limits.stack_bytes_max));
        let budget = Rc::clone(&self.budget);
        runtime.set_interrupt_handler(Some(Box::new(move || budget.tick())));
        Ok(runtime)
    }

    /// Evaluates `module_source` as an ES module and calls its export `function` with
    /// `args` (JSON converted to JavaScript values); returns the result as JSON
    /// (`undefined` becomes `null`). `kv` decides what `ccf.kv` may do; the transaction is
    /// back in the caller's hands when this returns, whatever the outcome.
    ///
    /// # Errors
    /// Every [`JsError`] variant; after any of them the engine is ready for the next call.
    pub fn call(
        &self,
        module_source: &str,
        function: &str,
        args: &[serde_json::Value],
        kv: KvBinding<'_>,
    ) -> Result<serde_json::Value> {
        self.call_with_host(module_source, function, args, kv, &HostFunctions::new())
    }

    /// [`JsEngine::call`] with `host` functions installed under `ccf.<path>` (for the
    /// governance effects and crypto helpers a constitution's `apply` uses).
    ///
    /// # Errors
    /// As [`JsEngine::call`]; a host function's `Err` is an exception in the script.
    pub fn call_with_host(
        &self,
        module_source: &str,
        function: &str,
        args: &[serde_json::Value],
        kv: KvBinding<'_>,
        host: &HostFunctions,
    ) -> Result<serde_json::Value> {
        let loan = KvLoan::new(kv);
        let mut slot = self.runtime.borrow_mut();
        let runtime = match slot.take() {
            Some(runtime) => runtime,
            None => self.build_runtime()?,
        };
        // Runs no job (the queue is empty) but moves QuickJS's stack top to this frame, so
        // the stack limit counts from here.
        let _ = runtime.execute_pending_job();
        self.budget.reset(self.limits.interrupt_budget);
        let context = Context::custom::<Intrinsics>(&runtime)
            .map_err(|e| JsError::Engine { message: e.to_string() })?;
        let call = Call {
            source: module_source,
            function,
            args,
            kv: loan.shared(),
            host,
            budget: &self.budget,
        };
        let result = context.with(|ctx| call.run(&ctx));
        drop(context);
        // Promise jobs still queued would run in the next call: drop the runtime instead.
        if !runtime.is_job_pending() {
            runtime.run_gc();
            *slot = Some(runtime);
        }
        result
    }
}

/// Which step of a call failed: decides what an ordinary exception means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Installing the prelude: a failure is the engine's.
    Prelude,
    /// Compiling the module: a failure is a syntax error.
    Compile,
    /// Evaluating the module or calling the export: a failure is the script's exception.
    Run,
    /// Converting arguments or the result between JSON and JavaScript.
    Convert,
}

/// One call's inputs, borrowed for the duration of [`JsEngine::call`].
struct Call<'a> {
    source: &'a str,
    function: &'a str,
    args: &'a [serde_json::Value],
    kv: Option<&'a Rc<KvShared>>,
    host: &'a HostFunctions,
    budget: &'a Budget,
}

impl Call<'_> {
    fn run<'js>(&self, ctx: &Ctx<'js>) -> Result<serde_json::Value> {
        let replacer = self.install_prelude(ctx)?;
        let export = self.export(ctx)?;
        let mut args = Args::new(ctx.clone(), self.args.len());
        for arg in self.args {
            let text = serde_json::to_string(arg)
                .map_err(|e| JsError::Conversion { message: e.to_string() })?;
            let value = ctx.json_parse(text).map_err(|e| self.fail(ctx, e, Stage::Convert))?;
            args.push_arg(value).map_err(|e| self.fail(ctx, e, Stage::Convert))?;
        }
        let result: Value<'js> = args.apply(&export).map_err(|e| self.fail(ctx, e, Stage::Run))?;
        let text = ctx
            .json_stringify_replacer(result, replacer)
            .map_err(|e| self.fail(ctx, e, Stage::Convert))?;
        let Some(text) = text else {
            return Ok(serde_json::Value::Null);
        };
        let text = text.to_string().map_err(|e| self.fail(ctx, e, Stage::Convert))?;
        serde_json::from_str(&text).map_err(|e| JsError::Conversion { message: e.to_string() })
    }

    /// Installs `ccf` and the determinism overrides; returns the result replacer.
    fn install_prelude<'js>(&self, ctx: &Ctx<'js>) -> Result<Function<'js>> {
        let install: Function<'js> =
            ctx.eval(PRELUDE).map_err(|e| self.fail(ctx, e, Stage::Prelude))?;
        let prelude = |e| self.fail(ctx, e, Stage::Prelude);
        let natives = natives(ctx, self.kv).map_err(prelude)?;
        self.host.install(ctx, &natives).map_err(prelude)?;
        install.call((natives, self.kv.is_some(), self.host.paths())).map_err(prelude)
    }

    /// Compiles and evaluates the module, then finds the export to call.
    fn export<'js>(&self, ctx: &Ctx<'js>) -> Result<Function<'js>> {
        let declared = Module::declare(ctx.clone(), MODULE_NAME, self.source)
            .map_err(|e| self.fail(ctx, e, Stage::Compile))?;
        let (module, promise) = declared.eval().map_err(|e| self.fail(ctx, e, Stage::Run))?;
        promise.finish::<()>().map_err(|e| self.fail(ctx, e, Stage::Run))?;
        let missing = || JsError::MissingExport { name: self.function.to_owned() };
        let namespace = module.namespace().map_err(|e| self.fail(ctx, e, Stage::Run))?;
        let export: Value<'js> = namespace.get(self.function).map_err(|_| missing())?;
        export.into_function().ok_or_else(missing)
    }

    /// Turns a failed step into the error the caller sees. Limits take precedence over
    /// whatever the script would have made of them.
    fn fail(&self, ctx: &Ctx<'_>, error: rquickjs::Error, stage: Stage) -> JsError {
        let thrown = matches!(error, rquickjs::Error::Exception).then(|| ctx.catch());
        if self.budget.exhausted() {
            return JsError::BudgetExhausted;
        }
        if matches!(error, rquickjs::Error::Allocation) {
            return JsError::OutOfMemory;
        }
        let thrown = match thrown {
            Some(thrown) => describe(&thrown),
            None => {
                Thrown { name: None, message: error.to_string(), stack: None, without_value: false }
            }
        };
        // QuickJS throws `null` (or nothing) when it cannot even allocate the error.
        if thrown.is("InternalError", "out of memory") || thrown.without_value {
            return JsError::OutOfMemory;
        }
        if thrown.is("RangeError", "Maximum call stack size exceeded") {
            return JsError::StackOverflow;
        }
        match stage {
            Stage::Prelude => JsError::Engine { message: thrown.text() },
            Stage::Compile => JsError::Syntax { message: thrown.with_location() },
            Stage::Convert => JsError::Conversion { message: thrown.message },
            Stage::Run => match self.kv.and_then(|kv| kv.denied_map(&thrown.message)) {
                Some(map) => JsError::WriteDenied { map },
                None => JsError::Exception { message: thrown.text(), stack: thrown.stack },
            },
        }
    }
}

/// A thrown value, read out of the engine.
#[derive(Debug)]
struct Thrown {
    name: Option<String>,
    message: String,
    stack: Option<String>,
    /// `null` or no value at all: how QuickJS reports an allocation failure it could not
    /// describe (an uncaught `throw null` is therefore reported as out of memory too).
    without_value: bool,
}

impl Thrown {
    fn is(&self, name: &str, message: &str) -> bool {
        self.name.as_deref() == Some(name) && self.message == message
    }

    /// `Name: message`, as JavaScript prints an error.
    fn text(&self) -> String {
        match &self.name {
            Some(name) if !name.is_empty() => format!("{name}: {}", self.message),
            Some(_) | None => self.message.clone(),
        }
    }

    /// The message and the first stack frame (`module.js:line:column`), if any.
    fn with_location(&self) -> String {
        let location = self
            .stack
            .as_deref()
            .and_then(|stack| stack.lines().map(str::trim).find(|line| !line.is_empty()));
        match location {
            Some(location) => format!("{} ({location})", self.message),
            None => self.message.clone(),
        }
    }
}

/// Reads a thrown value: an `Error`'s name, message and stack, or anything else as text.
fn describe(thrown: &Value<'_>) -> Thrown {
    if let Some(exception) = thrown.as_object().and_then(|o| Exception::from_object(o.clone())) {
        return Thrown {
            name: exception.get::<_, String>("name").ok(),
            message: exception.message().unwrap_or_default(),
            stack: exception.stack().filter(|stack| !stack.is_empty()),
            without_value: false,
        };
    }
    let message = thrown
        .get::<rquickjs::convert::Coerced<String>>()
        .map_or_else(|_| "a value that cannot be printed".to_owned(), |text| text.0);
    let without_value = thrown.is_null() || thrown.type_of() == rquickjs::Type::Uninitialized;
    Thrown { name: None, message, stack: None, without_value }
}
