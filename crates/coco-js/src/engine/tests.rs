use coco_kv::{MapName, Store, Tx};
use serde_json::json;

use super::*;

fn engine() -> JsEngine {
    JsEngine::new(JsLimits::default()).unwrap()
}

fn small_budget_engine() -> JsEngine {
    JsEngine::new(JsLimits { interrupt_budget: 50, ..JsLimits::default() }).unwrap()
}

fn call(engine: &JsEngine, source: &str, args: &[serde_json::Value]) -> Result<serde_json::Value> {
    engine.call(source, "f", args, KvBinding::None)
}

/// The engine still works: used after every failure.
fn assert_usable(engine: &JsEngine) {
    let value = call(engine, "export function f(a, b) { return a + b; }", &[json!(2), json!(3)]);
    assert_eq!(value.unwrap(), json!(5));
}

#[test]
fn calls_the_named_export_with_arguments() {
    let engine = engine();
    let source = "export function validate(input) {\n\
                  return { valid: input.n > 1, description: 'n=' + input.n }; }\n\
                  export function other() { return 'other'; }";
    let value = engine.call(source, "validate", &[json!({ "n": 2 })], KvBinding::None).unwrap();
    assert_eq!(value, json!({ "valid": true, "description": "n=2" }));
    assert_eq!(engine.call(source, "other", &[], KvBinding::None).unwrap(), json!("other"));
}

#[test]
fn json_round_trips() {
    let engine = engine();
    let identity = "export function f(x) { return x; }";
    for value in [
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(-17),
        json!(9_007_199_254_740_991_u64),
        json!(1.5),
        json!("text with \"quotes\" and unicode é"),
        json!([1, "two", null, [3], { "four": 4 }]),
        json!({ "a": { "b": [true, false] }, "__proto__": 1, "": "" }),
    ] {
        assert_eq!(call(&engine, identity, std::slice::from_ref(&value)).unwrap(), value);
    }
    // Missing arguments are `undefined`; `undefined` results and properties follow JSON.
    assert_eq!(call(&engine, identity, &[]).unwrap(), json!(null));
    let dropped = "export function f() { return { a: undefined, b: [undefined] }; }";
    assert_eq!(call(&engine, dropped, &[]).unwrap(), json!({ "b": [null] }));
}

#[test]
fn a_thrown_error_is_an_exception_with_its_message() {
    let engine = engine();
    let source = "function helper() { throw new Error('boom: bad action'); }\n\
                  export function f() { helper(); }";
    let JsError::Exception { message, stack } = call(&engine, source, &[]).unwrap_err() else {
        panic!("expected an exception");
    };
    assert_eq!(message, "Error: boom: bad action");
    assert!(stack.unwrap().contains("module.js"));
    let thrown_string = call(&engine, "export function f() { throw 'plain'; }", &[]);
    assert_eq!(
        thrown_string.unwrap_err(),
        JsError::Exception { message: "plain".into(), stack: None }
    );
    let type_error = call(&engine, "export function f() { return null.x; }", &[]).unwrap_err();
    assert!(matches!(
        &type_error,
        JsError::Exception { message, .. } if message.starts_with("TypeError")
    ));
    assert_usable(&engine);
}

#[test]
fn syntax_errors_and_missing_exports_are_reported() {
    let engine = engine();
    let error = call(&engine, "export function f( { return 1; }", &[]).unwrap_err();
    let JsError::Syntax { message } = error else { panic!("expected a syntax error: {error:?}") };
    assert!(message.contains("module.js:1"), "{message}");
    assert!(!message.contains('/'), "no host path: {message}");
    let missing = call(&engine, "export function g() {}", &[]).unwrap_err();
    assert_eq!(missing, JsError::MissingExport { name: "f".into() });
    let not_function = call(&engine, "export const f = 3;", &[]).unwrap_err();
    assert_eq!(not_function, JsError::MissingExport { name: "f".into() });
    let import = call(&engine, "import x from 'other'; export function f() {}", &[]);
    assert!(matches!(import.unwrap_err(), JsError::Syntax { .. } | JsError::Exception { .. }));
    let top_level = call(&engine, "throw new Error('at load'); export function f() {}", &[]);
    assert!(matches!(
        top_level.unwrap_err(),
        JsError::Exception { message, .. } if message.contains("at load")
    ));
    assert_usable(&engine);
}

#[test]
fn an_endless_loop_exhausts_the_budget_at_the_same_step_every_time() {
    let engine = small_budget_engine();
    let mut steps = Vec::new();
    for source in [
        "export function f() { while (true) {} }",
        "export function f() { while (true) {} }",
        "export function f() { try { while (true) {} } catch (e) { return 'caught'; } }",
    ] {
        assert_eq!(call(&engine, source, &[]).unwrap_err(), JsError::BudgetExhausted);
        steps.push(engine.steps_used());
        assert_usable(&engine);
    }
    assert_eq!(steps, [50, 50, 50]);
    // A bounded loop costs the same number of steps on every run.
    let bounded =
        "export function f() { let s = 0; for (let i = 0; i < 100000; i++) { s += i; } return s; }";
    let first = (call(&engine, bounded, &[]).unwrap(), engine.steps_used());
    let second = (call(&engine, bounded, &[]).unwrap(), engine.steps_used());
    assert_eq!(first, second);
    assert!(first.1 > 0 && first.1 < 50, "{first:?}");
}

#[test]
fn endless_recursion_and_allocation_hit_the_limits() {
    let engine = engine();
    let recurse = "function r(n) { return r(n + 1) + 1; } export function f() { return r(0); }";
    assert_eq!(call(&engine, recurse, &[]).unwrap_err(), JsError::StackOverflow);
    assert_usable(&engine);
    let allocate = concat!(
        "export function f() { const all = [];",
        " while (true) { all.push(new Array(100000).fill(1.5)); } }"
    );
    assert_eq!(call(&engine, allocate, &[]).unwrap_err(), JsError::OutOfMemory);
    assert_usable(&engine);
    let properties =
        "export function f() { const o = {}; for (let i = 0; ; i++) { o['k' + i] = i; } }";
    assert_eq!(call(&engine, properties, &[]).unwrap_err(), JsError::OutOfMemory);
    assert_usable(&engine);
}

#[test]
fn results_that_are_not_json_are_conversion_errors() {
    let engine = engine();
    for source in [
        "export function f() { return function () {}; }",
        "export function f() { return { nested: [() => 1] }; }",
        "export function f() { return Symbol('s'); }",
        "export function f() { return 10n; }",
        "export function f() { return NaN; }",
        "export function f() { const o = {}; o.self = o; return o; }",
        "export async function f() { return 1; }",
    ] {
        let error = call(&engine, source, &[]).unwrap_err();
        assert!(matches!(error, JsError::Conversion { .. }), "{source}: {error:?}");
    }
    assert_usable(&engine);
}

#[test]
fn there_is_no_clock_or_randomness_and_no_state_survives_a_call() {
    let engine = engine();
    for source in [
        "export function f() { return Date.now(); }",
        "export function f() { return new Date().getTime(); }",
        "export function f() { return Math.random(); }",
        "export function f() { return performance.now(); }",
        "export function f() { return new WeakRef({}); }",
    ] {
        let error = call(&engine, source, &[]).unwrap_err();
        assert!(matches!(error, JsError::Exception { .. }), "{source}: {error:?}");
    }
    let set = "export function f() { globalThis.leak = 1; Math.max = () => 0; return 1; }";
    assert_eq!(call(&engine, set, &[]).unwrap(), json!(1));
    let read = "export function f() { return [typeof globalThis.leak, Math.max(1, 2)]; }";
    assert_eq!(call(&engine, read, &[]).unwrap(), json!(["undefined", 2]));
    // A promise job left queued never runs, in this call or the next.
    let queued =
        "export function f() { Promise.resolve().then(() => { globalThis.late = 1; }); return 1; }";
    assert_eq!(call(&engine, queued, &[]).unwrap(), json!(1));
    assert_usable(&engine);
}

fn store_with(entries: &[(&str, &str)]) -> (Store, MapName) {
    let map = MapName::new("public:records").unwrap();
    let mut store = Store::new();
    let mut tx = store.begin();
    for (key, value) in entries {
        tx.put(&map, key.as_bytes(), value.as_bytes());
    }
    store.commit(tx).unwrap();
    (store, map)
}

fn written(tx: &Tx, map: &MapName) -> (Vec<(String, String)>, Vec<String>) {
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).unwrap();
    let Some(writes) = tx.write_set().get(map) else { return (Vec::new(), Vec::new()) };
    let puts = writes.writes().iter().map(|(k, v)| (text(k), text(v))).collect();
    let removes = writes.removes().iter().map(|k| text(k)).collect();
    (puts, removes)
}

const KV_SCRIPT: &str = r#"
const m = () => ccf.kv["public:records"];
const key = (s) => ccf.strToBuf(s);
export function apply(input) {
  const seen = [];
  m().forEach((v, k) => { seen.push(ccf.bufToStr(k) + "=" + ccf.bufToStr(v)); });
  const a = ccf.bufToStr(m().get(key("a")));
  const missing = m().get(key("zz"));
  m().set(key("c"), ccf.jsonCompatibleToBuf({ from: input }));
  m().delete(key("a"));
  return { seen, a, missing: missing === undefined,
    hasB: m().has(key("b")), hasA: m().has(key("a")),
           c: ccf.bufToJsonCompatible(m().get(key("c"))) };
}
export function readOnly() { return ccf.bufToStr(m().get(key("b"))); }
export function write() { m().set(key("x"), key("y")); }
export function writeCaught() { try { m().delete(key("b")); } catch (e) { return "caught"; } }
export function badName() { return ccf.kv["\u0001bad"]; }
export function noKv() { return typeof ccf.kv; }
"#;

#[test]
fn kv_reads_and_writes_go_through_the_transaction() {
    let (store, map) = store_with(&[("a", "1"), ("b", "2")]);
    let engine = engine();
    let mut tx = store.begin();
    let value = engine.call(KV_SCRIPT, "apply", &[json!("m0")], KvBinding::ReadWrite(&mut tx));
    assert_eq!(
        value.unwrap(),
        json!({ "seen": ["a=1", "b=2"], "a": "1", "missing": true, "hasB": true, "hasA": false,
                "c": { "from": "m0" } })
    );
    let (puts, removes) = written(&tx, &map);
    assert_eq!(puts, [("c".to_owned(), r#"{"from":"m0"}"#.to_owned())]);
    assert_eq!(removes, ["a"]);
    // The reads joined the read set: a concurrent write to `b` makes the commit conflict.
    let mut store = store;
    let mut other = store.begin();
    other.put(&map, b"b".as_slice(), b"3".as_slice());
    store.commit(other).unwrap();
    assert!(store.commit(tx).unwrap_err().is_conflict());
}

#[test]
fn read_only_bindings_refuse_writes() {
    let (store, map) = store_with(&[("b", "2")]);
    let engine = engine();
    let mut tx = store.begin();
    let read = engine.call(KV_SCRIPT, "readOnly", &[], KvBinding::ReadOnly(&mut tx));
    assert_eq!(read.unwrap(), json!("2"));
    let denied = engine.call(KV_SCRIPT, "write", &[], KvBinding::ReadOnly(&mut tx));
    assert_eq!(denied.unwrap_err(), JsError::WriteDenied { map: "public:records".into() });
    let caught = engine.call(KV_SCRIPT, "writeCaught", &[], KvBinding::ReadOnly(&mut tx));
    assert_eq!(caught.unwrap(), json!("caught"));
    assert!(tx.write_set().is_empty());
    assert_eq!(written(&tx, &map), (Vec::new(), Vec::new()));
    // The Tx came back intact: its snapshot still reads the store's state.
    assert_eq!(tx.get(&map, b"b"), Some(b"2".as_slice()));
}

#[test]
fn kv_misuse_is_a_script_exception_and_absent_without_binding() {
    let (store, _) = store_with(&[]);
    let engine = engine();
    let mut tx = store.begin();
    let bad = engine.call(KV_SCRIPT, "badName", &[], KvBinding::ReadWrite(&mut tx)).unwrap_err();
    assert!(
        matches!(&bad, JsError::Exception { message, .. } if message.contains("invalid map name")),
        "{bad:?}"
    );
    let not_buffer = "export function f() { return ccf.kv['public:m'].get('string key'); }";
    let error = engine.call(not_buffer, "f", &[], KvBinding::ReadWrite(&mut tx)).unwrap_err();
    assert!(
        matches!(&error, JsError::Exception { message, .. } if message.contains("ArrayBuffer")),
        "{error:?}"
    );
    assert_eq!(engine.call(KV_SCRIPT, "noKv", &[], KvBinding::None).unwrap(), json!("undefined"));
    let text = "export function f() { return ccf.bufToStr(ccf.strToBuf('héllo')); }";
    assert_eq!(call(&engine, text, &[]).unwrap(), json!("héllo"));
}

#[test]
fn the_transaction_comes_back_after_a_failed_call() {
    let (store, map) = store_with(&[]);
    let engine = small_budget_engine();
    let mut tx = store.begin();
    let source = concat!(
        "export function f() {",
        " ccf.kv['public:records'].set(ccf.strToBuf('k'), ccf.strToBuf('v')); while (true) {} }"
    );
    let error = engine.call(source, "f", &[], KvBinding::ReadWrite(&mut tx)).unwrap_err();
    assert_eq!(error, JsError::BudgetExhausted);
    assert_eq!(written(&tx, &map).0, [("k".to_owned(), "v".to_owned())]);
}

#[test]
fn host_functions_are_callable_under_ccf() {
    let engine = engine();
    let calls = Rc::new(RefCell::new(Vec::new()));
    let mut host = HostFunctions::new();
    let recorded = Rc::clone(&calls);
    host.add("node.triggerLedgerRekey", move |args| {
        recorded.borrow_mut().push(args.to_vec());
        Ok(serde_json::Value::Null)
    });
    host.add("crypto.isValid", |args| Ok(json!(args.first() == Some(&json!("ok")))));
    host.add("crypto.fail", |_| Err("bad certificate".to_owned()));
    let source = "export function f() { ccf.node.triggerLedgerRekey(1, 'two'); \
                  return [ccf.crypto.isValid('ok'), ccf.crypto.isValid('no')]; }\n\
                  export function g() { ccf.crypto.fail(); }";
    let value = engine.call_with_host(source, "f", &[], KvBinding::None, &host).unwrap();
    assert_eq!(value, json!([true, false]));
    assert_eq!(*calls.borrow(), [vec![json!(1), json!("two")]]);
    let error = engine.call_with_host(source, "g", &[], KvBinding::None, &host).unwrap_err();
    assert!(
        matches!(&error, JsError::Exception { message, .. } if message == "Error: bad certificate")
    );
    assert!(
        call(&engine, "export function f() { return typeof ccf.node; }", &[])
            .is_ok_and(|v| v == json!("undefined"))
    );
}
