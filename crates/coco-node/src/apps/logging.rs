//! The logging app, after CCF's logging sample: records keyed by a `u64` id in a private
//! map (`records`, encrypted in the ledger) and a public one (`public:records`).
//!
//! Routes (below `/app`): `POST /log/{private,public}` with `{"id", "msg"}`;
//! `GET`/`DELETE /log/{private,public}?id=N`; `GET /log/{private,public}/all?from=&to=&limit=`
//! (ordered range, paginated with `next`); `POST /log/blocking/{private,public}` (answers
//! once the write is committed).

use std::ops::Bound;

use coco_kv::{MapName, Tx};
use serde::Deserialize;
use serde_json::json;

use crate::app::{App, AppError, AppRequest, AppResponse, Method};

/// The logging app.
#[derive(Clone, Debug)]
pub struct LoggingApp {
    private: MapName,
    public: MapName,
}

impl Default for LoggingApp {
    fn default() -> Self {
        Self {
            private: MapName::new("records").expect("valid map name"),
            public: MapName::new("public:records").expect("valid map name"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostBody {
    id: u64,
    msg: String,
}

#[derive(Deserialize)]
struct IdQuery {
    id: Option<String>,
}

#[derive(Deserialize)]
struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
}

/// Largest message accepted, in bytes (the request body limit bounds it too).
const MSG_BYTES_MAX: usize = 1 << 20;

impl App for LoggingApp {
    fn handle(&self, request: &AppRequest<'_>, tx: &mut Tx) -> Result<AppResponse, AppError> {
        let (map, rest) = match request.path.strip_prefix("/log/") {
            Some(rest) => self.route_map(rest).ok_or_else(|| AppError::no_route(request.path))?,
            None => return Err(AppError::no_route(request.path)),
        };
        match (rest, request.method) {
            (Route::Record, Method::Post) => post(map, request, tx, false),
            (Route::Blocking, Method::Post) => post(map, request, tx, true),
            (Route::Record, Method::Get) => get(map, request, tx),
            (Route::Record, Method::Delete) => delete(map, request, tx),
            (Route::All, Method::Get) => list(map, request, tx),
            (Route::Record | Route::Blocking | Route::All, _) => {
                Err(AppError::method_not_allowed(request.path))
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Route {
    Record,
    Blocking,
    All,
}

impl LoggingApp {
    fn route_map(&self, rest: &str) -> Option<(&MapName, Route)> {
        match rest {
            "private" => Some((&self.private, Route::Record)),
            "public" => Some((&self.public, Route::Record)),
            "private/all" => Some((&self.private, Route::All)),
            "public/all" => Some((&self.public, Route::All)),
            "blocking/private" => Some((&self.private, Route::Blocking)),
            "blocking/public" => Some((&self.public, Route::Blocking)),
            _ => None,
        }
    }
}

fn post(
    map: &MapName,
    request: &AppRequest<'_>,
    tx: &mut Tx,
    blocking: bool,
) -> Result<AppResponse, AppError> {
    let body: PostBody = json_object(request.body)?;
    if body.msg.len() > MSG_BYTES_MAX {
        return Err(AppError::invalid_input("msg is too long"));
    }
    tx.put(map, body.id.to_be_bytes(), body.msg.as_bytes());
    let mut response = AppResponse::json(&json!(true));
    response.wait_for_commit = blocking;
    Ok(response)
}

/// Parses a JSON object into `T`. serde would also accept a JSON array for a struct
/// (`[7, "x"]`), which no client means; the logging app, like CCF's, takes objects only.
fn json_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    let shape = || AppError::invalid_input("body must be {\"id\": u64, \"msg\": string}");
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| AppError::invalid_input(format!("body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(shape());
    }
    serde_json::from_value(value).map_err(|e| {
        AppError::invalid_input(format!("body must be {{\"id\": u64, \"msg\": string}}: {e}"))
    })
}

fn parse_id(text: Option<&str>, name: &str) -> Result<u64, AppError> {
    let text =
        text.ok_or_else(|| AppError::invalid_input(format!("missing query parameter {name}")))?;
    text.parse().map_err(|_| AppError::invalid_input(format!("{name} must be an unsigned integer")))
}

fn query<'a, T: Deserialize<'a>>(request: &AppRequest<'a>) -> Result<T, AppError> {
    serde_urlencoded::from_str(request.query)
        .map_err(|e| AppError::invalid_input(format!("bad query string: {e}")))
}

fn get(map: &MapName, request: &AppRequest<'_>, tx: &mut Tx) -> Result<AppResponse, AppError> {
    let q: IdQuery = query(request)?;
    let id = parse_id(q.id.as_deref(), "id")?;
    match tx.get(map, &id.to_be_bytes()) {
        Some(value) => {
            Ok(AppResponse::json(&json!({"id": id, "msg": String::from_utf8_lossy(value)})))
        }
        None => Err(AppError::not_found(format!("no record with id {id}"))),
    }
}

fn delete(map: &MapName, request: &AppRequest<'_>, tx: &mut Tx) -> Result<AppResponse, AppError> {
    let q: IdQuery = query(request)?;
    let id = parse_id(q.id.as_deref(), "id")?;
    if tx.get(map, &id.to_be_bytes()).is_none() {
        return Err(AppError::not_found(format!("no record with id {id}")));
    }
    tx.remove(map, id.to_be_bytes());
    Ok(AppResponse::json(&json!(true)))
}

fn list(map: &MapName, request: &AppRequest<'_>, tx: &mut Tx) -> Result<AppResponse, AppError> {
    let q: RangeQuery = query(request)?;
    let from = q.from.as_deref().map(|t| parse_id(Some(t), "from")).transpose()?.unwrap_or(0);
    let to = q.to.as_deref().map(|t| parse_id(Some(t), "to")).transpose()?;
    let limit = q.limit.as_deref().map(|t| parse_id(Some(t), "limit")).transpose()?;
    let limit = limit.unwrap_or(request.page_items_max).min(request.page_items_max);
    if limit == 0 {
        return Err(AppError::invalid_input("limit must be at least 1"));
    }
    let from_key = from.to_be_bytes();
    let to_key = to.map(u64::to_be_bytes);
    let start = Bound::Included(&from_key[..]);
    let end = to_key.as_ref().map_or(Bound::Unbounded, |to| Bound::Excluded(&to[..]));
    let fetch = usize::try_from(limit + 1).unwrap_or(usize::MAX);
    let items = tx.range(map, start, end, fetch);
    let mut entries = Vec::with_capacity(items.len());
    let mut next = None;
    for (index, (key, value)) in items.iter().enumerate() {
        let id = u64::from_be_bytes(
            key.as_slice().try_into().map_err(|_| AppError::invalid_input("foreign key in map"))?,
        );
        if index as u64 == limit {
            next = Some(id);
            break;
        }
        entries.push(json!({"id": id, "msg": String::from_utf8_lossy(value)}));
    }
    Ok(AppResponse::json(&json!({"entries": entries, "next": next})))
}
