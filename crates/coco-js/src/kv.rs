//! The `ccf.kv` and `ccf.*Buf*` bindings: native functions the prelude wraps into CCF's
//! JavaScript API shape, reading and writing through the caller's [`Tx`].

use std::cell::RefCell;
use std::ops::Bound;
use std::rc::Rc;

use coco_kv::{MapName, Store, Tx};
use rquickjs::{Array, ArrayBuffer, Ctx, Exception, Function, Object, TypedArray, Value};

use crate::limits::FOR_EACH_ENTRIES_MAX;

/// What a call may do with the key-value store.
#[derive(Debug)]
pub enum KvBinding<'a> {
    /// No `ccf.kv` at all (ballots, pure functions).
    None,
    /// `ccf.kv` reads through the transaction (joining its read set); writes throw, and
    /// an uncaught one ends the call with [`JsError::WriteDenied`](crate::JsError::WriteDenied).
    ReadOnly(&'a mut Tx),
    /// `ccf.kv` reads and writes through the transaction; the caller commits or discards it.
    ReadWrite(&'a mut Tx),
}

/// The transaction while a call runs, shared with the native closures (which must be
/// `'static`). The [`KvLoan`] puts it back into the caller's `&mut Tx` when the call ends.
#[derive(Debug)]
pub(crate) struct KvShared {
    tx: RefCell<Option<Tx>>,
    writable: bool,
    maps: RefCell<Vec<MapName>>,
    /// The map and message of the last denied write, to recognise it if uncaught.
    denied: RefCell<Option<(String, String)>>,
}

impl KvShared {
    /// The map of a denied write whose error message is `message`, if any.
    pub(crate) fn denied_map(&self, message: &str) -> Option<String> {
        let denied = self.denied.borrow();
        denied.as_ref().filter(|(_, text)| text == message).map(|(map, _)| map.clone())
    }

    fn map(&self, id: u32) -> Option<MapName> {
        usize::try_from(id).ok().and_then(|index| self.maps.borrow().get(index).cloned())
    }
}

/// Lends the caller's transaction to a call and gives it back on drop (also on error
/// paths), so the `Tx` cannot outlive the call inside the engine.
pub(crate) struct KvLoan<'a> {
    slot: Option<&'a mut Tx>,
    shared: Option<Rc<KvShared>>,
}

impl<'a> KvLoan<'a> {
    pub(crate) fn new(binding: KvBinding<'a>) -> Self {
        let (slot, writable) = match binding {
            KvBinding::None => return Self { slot: None, shared: None },
            KvBinding::ReadOnly(tx) => (tx, false),
            KvBinding::ReadWrite(tx) => (tx, true),
        };
        let tx = std::mem::replace(slot, Store::new().begin());
        let shared = KvShared {
            tx: RefCell::new(Some(tx)),
            writable,
            maps: RefCell::new(Vec::new()),
            denied: RefCell::new(None),
        };
        Self { slot: Some(slot), shared: Some(Rc::new(shared)) }
    }

    pub(crate) fn shared(&self) -> Option<&Rc<KvShared>> {
        self.shared.as_ref()
    }
}

impl Drop for KvLoan<'_> {
    fn drop(&mut self) {
        let (Some(slot), Some(shared)) = (self.slot.as_deref_mut(), self.shared.as_ref()) else {
            return;
        };
        if let Ok(mut tx) = shared.tx.try_borrow_mut()
            && let Some(tx) = tx.take()
        {
            *slot = tx;
        }
    }
}

/// Builds the object of native functions the prelude wraps.
pub(crate) fn natives<'js>(
    ctx: &Ctx<'js>,
    kv: Option<&Rc<KvShared>>,
) -> rquickjs::Result<Object<'js>> {
    let native = Object::new(ctx.clone())?;
    native.set(
        "strToBuf",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, text: String| {
            ArrayBuffer::new_copy(ctx, text.as_bytes())
        })?,
    )?;
    native.set(
        "bufToStr",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, buf: Value<'js>| {
            let bytes = buf_bytes(&ctx, &buf)?;
            String::from_utf8(bytes)
                .map_err(|_| Exception::throw_type(&ctx, "buffer is not valid UTF-8"))
        })?,
    )?;
    if let Some(kv) = kv {
        kv_natives(ctx, &native, kv)?;
    }
    Ok(native)
}

fn kv_natives<'js>(
    ctx: &Ctx<'js>,
    native: &Object<'js>,
    kv: &Rc<KvShared>,
) -> rquickjs::Result<()> {
    let shared = Rc::clone(kv);
    native.set(
        "open",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, name: String| {
            let map =
                MapName::new(&name).map_err(|e| Exception::throw_type(&ctx, &e.to_string()))?;
            let mut maps = shared.maps.borrow_mut();
            let id = u32::try_from(maps.len())
                .map_err(|_| Exception::throw_range(&ctx, "too many maps opened"))?;
            maps.push(map);
            Ok::<_, rquickjs::Error>(id)
        })?,
    )?;
    let shared = Rc::clone(kv);
    native.set(
        "get",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, id: u32, key: Value<'js>| {
            let (map, key) = (map_of(&ctx, &shared, id)?, buf_bytes(&ctx, &key)?);
            let value = with_tx(&ctx, &shared, |tx| tx.get(&map, &key).map(<[u8]>::to_vec))?;
            value.map(|value| ArrayBuffer::new_copy(ctx.clone(), value)).transpose()
        })?,
    )?;
    let shared = Rc::clone(kv);
    native.set(
        "has",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, id: u32, key: Value<'js>| {
            let (map, key) = (map_of(&ctx, &shared, id)?, buf_bytes(&ctx, &key)?);
            with_tx(&ctx, &shared, |tx| tx.get(&map, &key).is_some())
        })?,
    )?;
    kv_write_natives(ctx, native, kv)?;
    let shared = Rc::clone(kv);
    native.set(
        "entries",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, id: u32| {
            let map = map_of(&ctx, &shared, id)?;
            entries(&ctx, &shared, &map)
        })?,
    )?;
    Ok(())
}

fn kv_write_natives<'js>(
    ctx: &Ctx<'js>,
    native: &Object<'js>,
    kv: &Rc<KvShared>,
) -> rquickjs::Result<()> {
    let shared = Rc::clone(kv);
    native.set(
        "set",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, id: u32, key: Value<'js>, value: Value<'js>| {
                let map = writable_map(&ctx, &shared, id)?;
                let (key, value) = (buf_bytes(&ctx, &key)?, buf_bytes(&ctx, &value)?);
                with_tx(&ctx, &shared, |tx| tx.put(&map, key, value))
            },
        )?,
    )?;
    let shared = Rc::clone(kv);
    native.set(
        "del",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, id: u32, key: Value<'js>| {
            let map = writable_map(&ctx, &shared, id)?;
            let key = buf_bytes(&ctx, &key)?;
            with_tx(&ctx, &shared, |tx| tx.remove(&map, key))
        })?,
    )?;
    Ok(())
}

/// A flat array `[key0, value0, key1, value1, ...]` of the whole map, in key order.
fn entries<'js>(ctx: &Ctx<'js>, shared: &KvShared, map: &MapName) -> rquickjs::Result<Array<'js>> {
    let max = usize::try_from(FOR_EACH_ENTRIES_MAX).unwrap_or(usize::MAX);
    let items = with_tx(ctx, shared, |tx| {
        tx.range(map, Bound::Unbounded, Bound::Unbounded, max.saturating_add(1))
    })?;
    if items.len() > max {
        let message = format!("map has more than {FOR_EACH_ENTRIES_MAX} entries to iterate");
        return Err(Exception::throw_range(ctx, &message));
    }
    let array = Array::new(ctx.clone())?;
    for (index, (key, value)) in items.into_iter().enumerate() {
        array.set(index * 2, ArrayBuffer::new_copy(ctx.clone(), key)?)?;
        array.set(index * 2 + 1, ArrayBuffer::new_copy(ctx.clone(), value)?)?;
    }
    Ok(array)
}

fn map_of(ctx: &Ctx<'_>, shared: &KvShared, id: u32) -> rquickjs::Result<MapName> {
    shared.map(id).ok_or_else(|| Exception::throw_type(ctx, "unknown map handle"))
}

/// The map, if writes are allowed; otherwise records the denial and throws.
fn writable_map(ctx: &Ctx<'_>, shared: &KvShared, id: u32) -> rquickjs::Result<MapName> {
    let map = map_of(ctx, shared, id)?;
    if shared.writable {
        return Ok(map);
    }
    let message = format!("write to map {:?} denied: the KV binding is read-only", map.as_str());
    *shared.denied.borrow_mut() = Some((map.as_str().to_owned(), message.clone()));
    Err(Exception::throw_message(ctx, &message))
}

fn with_tx<T>(
    ctx: &Ctx<'_>,
    shared: &KvShared,
    f: impl FnOnce(&mut Tx) -> T,
) -> rquickjs::Result<T> {
    let mut tx = shared.tx.borrow_mut();
    let tx = tx.as_mut().ok_or_else(|| Exception::throw_type(ctx, "the transaction has ended"))?;
    Ok(f(tx))
}

/// The bytes of an `ArrayBuffer`, copied element by element (no `unsafe` slice access).
fn buf_bytes<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> rquickjs::Result<Vec<u8>> {
    let buffer = ArrayBuffer::from_value(value.clone())
        .ok_or_else(|| Exception::throw_type(ctx, "expected an ArrayBuffer"))?;
    let view = TypedArray::<u8>::from_arraybuffer(buffer)?;
    (0..view.len())
        .map(|index| view.get::<_, u8>(u32::try_from(index).unwrap_or(u32::MAX)))
        .collect()
}
