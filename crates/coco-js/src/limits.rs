//! The bounds every JavaScript call runs under.

use coco_types::LimitsError;

/// One unit of [`JsLimits::interrupt_budget`]: QuickJS calls the interrupt handler once
/// every this many interpreter polls (a poll is a backward jump or a function call).
pub const POLLS_PER_STEP: u64 = 10_000;

/// Entries one `forEach` over a KV map may visit; a larger map throws a `RangeError` in
/// JavaScript instead of materialising it (the callback runs after the entries are read).
pub const FOR_EACH_ENTRIES_MAX: u64 = 100_000;

/// Heap, stack and time bounds of the engine. Time is counted in interpreter steps, not
/// wall-clock, so a script that runs out of budget does so at the same point on every node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsLimits {
    /// Bytes QuickJS may allocate for one call (context, parsed module, values); beyond it
    /// the call fails with [`JsError::OutOfMemory`](crate::JsError::OutOfMemory).
    pub heap_bytes_max: u64,
    /// Native stack QuickJS may use below the point where [`JsEngine::call`](crate::JsEngine::call)
    /// was entered; deeper recursion fails with
    /// [`JsError::StackOverflow`](crate::JsError::StackOverflow). The calling thread must
    /// have at least this much stack left plus a margin (Rust's spawned threads have 2 MiB).
    pub stack_bytes_max: u64,
    /// Interrupt-handler calls (each [`POLLS_PER_STEP`] polls) one call may consume; at 0
    /// the script is stopped with [`JsError::BudgetExhausted`](crate::JsError::BudgetExhausted).
    /// The default, 10 000 steps (10^8 polls), stops an endless loop after about 0.2 s of
    /// a release build.
    pub interrupt_budget: u64,
}

impl Default for JsLimits {
    fn default() -> Self {
        Self { heap_bytes_max: 64 << 20, stack_bytes_max: 1 << 20, interrupt_budget: 10_000 }
    }
}

impl JsLimits {
    /// Checks every bound against its sane range.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let check = LimitsError::check;
        check("heap_bytes_max", self.heap_bytes_max, 1 << 20, 1 << 32)?;
        check("stack_bytes_max", self.stack_bytes_max, 64 << 10, 64 << 20)?;
        check("interrupt_budget", self.interrupt_budget, 1, 1 << 32)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_extremes_are_not() {
        JsLimits::default().validate().unwrap();
        let zero_budget = JsLimits { interrupt_budget: 0, ..JsLimits::default() };
        assert_eq!(zero_budget.validate().unwrap_err().name, "interrupt_budget");
        let tiny_heap = JsLimits { heap_bytes_max: 1024, ..JsLimits::default() };
        assert_eq!(tiny_heap.validate().unwrap_err().name, "heap_bytes_max");
        let huge_stack = JsLimits { stack_bytes_max: 1 << 40, ..JsLimits::default() };
        assert_eq!(huge_stack.validate().unwrap_err().name, "stack_bytes_max");
    }
}
