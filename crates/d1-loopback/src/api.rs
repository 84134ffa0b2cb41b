//! The route table, request dispatch and the D1 endpoints.
//!
//! [`dispatch`] answers one request: it finds the route, checks the API
//! token, the account and the database or R2 bucket that the path names,
//! and calls the route's handler with a [`Ctx`]. Handlers are plain
//! functions that return a [`Reply`]; they never see a request that failed
//! those checks. The R2 endpoints live in `r2`.

use serde::Serialize;

use crate::database::{Database, RestoreError};
use crate::export;
use crate::graphql;
use crate::http::{self, Access, Body, Params, Reply, Request, ResultInfo, Route};
use crate::import;
use crate::query;
use crate::r2;
use crate::user;
use crate::util;
use crate::{Shared, TimeTravelRestore};

/// What a handler gets to work with.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    pub req: &'a Request,
    pub params: Params,
    database: Option<std::sync::Arc<Database>>,
}

impl Ctx<'_> {
    /// The database the path names. Only routes with a `{database}` segment
    /// may call this; dispatch has already checked that it exists.
    pub fn database(&self) -> &Database {
        self.database
            .as_deref()
            .expect("only routes with a {database} segment ask for the database")
    }
}

/// A route handler.
pub(crate) type Handler = fn(&Ctx<'_>) -> Reply;

/// Every route the server answers. A request that matches none of them is
/// answered 404 and recorded as unhandled.
pub(crate) static ROUTES: &[Route<Handler>] = &[
    Route {
        method: "GET",
        pattern: "/client/v4/accounts/{account}/d1/database",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: list_databases,
    },
    Route {
        method: "POST",
        pattern: "/client/v4/accounts/{account}/d1/database",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: create_database,
    },
    Route {
        method: "DELETE",
        pattern: "/client/v4/accounts/{account}/d1/database/{database}",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: delete_database,
    },
    Route {
        method: "GET",
        pattern: "/client/v4/accounts/{account}/d1/database/{database}",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: get_database,
    },
    Route {
        method: "POST",
        pattern: "/client/v4/accounts/{account}/d1/database/{database}/query",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: post_query,
    },
    Route {
        method: "GET",
        pattern: "/client/v4/accounts/{account}/d1/database/{database}/time_travel/bookmark",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: get_bookmark,
    },
    Route {
        method: "POST",
        pattern: "/client/v4/accounts/{account}/d1/database/{database}/time_travel/restore",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: post_restore,
    },
    Route {
        method: "POST",
        pattern: "/client/v4/accounts/{account}/d1/database/{database}/export",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: export::start_or_poll,
    },
    Route {
        method: "POST",
        pattern: "/client/v4/accounts/{account}/d1/database/{database}/import",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: import::import,
    },
    Route {
        method: "GET",
        pattern: "/client/v4/accounts/{account}/r2/buckets",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: r2::list_buckets,
    },
    Route {
        method: "POST",
        pattern: "/client/v4/accounts/{account}/r2/buckets",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: r2::create_bucket,
    },
    Route {
        method: "GET",
        pattern: "/client/v4/accounts/{account}/r2/buckets/{bucket}",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: r2::get_bucket,
    },
    Route {
        method: "GET",
        pattern: "/client/v4/accounts/{account}/r2/buckets/{bucket}/lifecycle",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: r2::get_lifecycle,
    },
    Route {
        method: "PUT",
        pattern: "/client/v4/accounts/{account}/r2/buckets/{bucket}/lifecycle",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: r2::put_lifecycle,
    },
    Route {
        method: "GET",
        pattern: "/client/v4/accounts/{account}/r2/buckets/{bucket}/lock",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: r2::get_lock,
    },
    Route {
        method: "PUT",
        pattern: "/client/v4/accounts/{account}/r2/buckets/{bucket}/lock",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: r2::put_lock,
    },
    // `objects` with nothing after it; the `objects/{*key}` routes below
    // need a non-empty key, so neither shadows the other.
    Route {
        method: "GET",
        pattern: "/client/v4/accounts/{account}/r2/buckets/{bucket}/objects",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: r2::list_objects,
    },
    Route {
        method: "PUT",
        pattern: "/client/v4/accounts/{account}/r2/buckets/{bucket}/objects/{*key}",
        access: Access::ApiToken,
        body: Body::Spooled,
        handler: r2::put_object,
    },
    Route {
        method: "GET",
        pattern: "/client/v4/accounts/{account}/r2/buckets/{bucket}/objects/{*key}",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: r2::get_object,
    },
    Route {
        method: "DELETE",
        pattern: "/client/v4/accounts/{account}/r2/buckets/{bucket}/objects/{*key}",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: r2::delete_object,
    },
    Route {
        method: "POST",
        pattern: "/client/v4/graphql",
        access: Access::ApiToken,
        body: Body::Buffered,
        handler: graphql::query,
    },
    Route {
        method: "GET",
        pattern: "/client/v4/user/tokens/verify",
        access: Access::Open,
        body: Body::Buffered,
        handler: user::verify_token,
    },
    Route {
        method: "GET",
        pattern: "/client/v4/user",
        access: Access::Open,
        body: Body::Buffered,
        handler: user::get_user,
    },
    Route {
        method: "GET",
        pattern: "/client/v4/accounts",
        access: Access::Open,
        body: Body::Buffered,
        handler: user::list_accounts,
    },
    Route {
        method: "GET",
        pattern: "/client/v4/memberships",
        access: Access::Open,
        body: Body::Buffered,
        handler: user::list_memberships,
    },
    Route {
        method: "GET",
        pattern: "/__signed/{token}/{filename}",
        access: Access::Open,
        body: Body::Buffered,
        handler: export::download,
    },
    Route {
        method: "PUT",
        pattern: "/__signed/{token}/{filename}",
        access: Access::Open,
        body: Body::Spooled,
        handler: import::upload,
    },
];

/// The outcome of dispatching one request.
pub(crate) struct Dispatched {
    pub reply: Reply,
    /// False when no route matched, or the handler did not recognise the
    /// request.
    pub handled: bool,
}

/// How the body of a request for `method` and `path` is to be read.
pub(crate) fn body_mode(method: &str, path: &str) -> Body {
    http::match_route(ROUTES, method, path).map_or(Body::Buffered, |(route, _)| route.body)
}

/// Answers one request.
pub(crate) fn dispatch(shared: &Shared, req: &Request) -> Dispatched {
    let Some((route, params)) = http::match_route(ROUTES, &req.method, &req.path) else {
        return Dispatched {
            reply: Reply::no_route(&req.path),
            handled: false,
        };
    };
    let reply = check_and_call(shared, req, route, params);
    Dispatched {
        handled: !reply.unhandled,
        reply,
    }
}

fn check_and_call(shared: &Shared, req: &Request, route: &Route<Handler>, params: Params) -> Reply {
    if route.access == Access::ApiToken {
        let expected = format!("Bearer {}", shared.api_token);
        if req.header("authorization") != Some(expected.as_str()) {
            return Reply::auth_error();
        }
    }
    if params
        .get("account")
        .is_some_and(|account| account != shared.account_id)
    {
        return Reply::cf_error(
            404,
            7403,
            "The given account is not valid or is not authorized to access this service",
        );
    }
    let database = match params.get("database") {
        None => None,
        Some(uuid) => match shared.database(uuid).or_else(|| {
            // The API finds a database by name as well as by uuid on
            // `GET /d1/database/{name}`, which wrangler 4.164 uses to look up
            // a database that is not in the configuration (`d1 info NAME`).
            (route.method == "GET" && route.pattern.ends_with("/d1/database/{database}"))
                .then(|| shared.database_named(uuid))
                .flatten()
        }) {
            Some(db) => Some(db),
            None => {
                return Reply::cf_error(
                    404,
                    7404,
                    format!("The database {uuid} could not be found"),
                );
            }
        },
    };
    if let Some(refusal) = params
        .get("bucket")
        .and_then(|bucket| r2::check_bucket(shared, req, bucket))
    {
        return refusal;
    }
    (route.handler)(&Ctx {
        shared,
        req,
        params,
        database,
    })
}

/// One element of the database list.
#[derive(Serialize)]
struct ListedDatabase<'a> {
    uuid: &'a str,
    name: &'a str,
    created_at: &'a str,
    version: &'static str,
    num_tables: u64,
    file_size: u64,
}

/// `GET /accounts/{account}/d1/database?name=&page=&per_page=`.
///
/// wrangler's `listDatabases` asks for pages of 10 until a page comes back
/// short, so pages past the end must be empty.
fn list_databases(ctx: &Ctx<'_>) -> Reply {
    let number = |name: &str, default: usize| {
        ctx.req
            .query_param(name)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    let page = number("page", 1);
    let per_page = number("per_page", 1000).min(10_000);
    let name = ctx.req.query_param("name").filter(|n| !n.is_empty());
    let all = ctx.shared.databases();
    let matching: Vec<&Database> = all
        .iter()
        .map(|db| &**db)
        .filter(|db| name.is_none_or(|n| db.name.contains(n)))
        .collect();
    let mut listed = Vec::new();
    for db in matching
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
    {
        let state = db.lock();
        listed.push(ListedDatabase {
            uuid: &db.uuid,
            name: &db.name,
            created_at: &db.created_at,
            version: "production",
            num_tables: state.num_tables().unwrap_or(0),
            file_size: state.file_size().unwrap_or(0),
        });
    }
    let info = ResultInfo {
        page,
        per_page,
        count: listed.len(),
        total_count: matching.len(),
    };
    Reply::cf_ok_paged(listed, Some(info))
}

/// D1's error code for a database name that is in use.
const NAME_IN_USE: u32 = 7502;

/// `POST /accounts/{account}/d1/database` with `{"name",
/// "primary_location_hint"?, "jurisdiction"?}`: a new, empty database.
fn create_database(ctx: &Ctx<'_>) -> Reply {
    let body: serde_json::Value = match serde_json::from_slice(&ctx.req.body) {
        Ok(body) => body,
        Err(e) => {
            return Reply::cf_error(400, 7400, format!("Malformed JSON in request body: {e}"));
        }
    };
    let Some(name) = body
        .get("name")
        .and_then(|n| n.as_str())
        .filter(|n| !n.is_empty())
    else {
        return Reply::cf_error(400, 7400, "The request body must have a string \"name\"");
    };
    let region = match body.get("primary_location_hint").and_then(|h| h.as_str()) {
        None => "WNAM".to_owned(),
        Some(hint @ ("weur" | "eeur" | "apac" | "oc" | "wnam" | "enam")) => hint.to_uppercase(),
        Some(other) => {
            return Reply::cf_error(400, 7400, format!("Invalid location hint: {other}"));
        }
    };
    let mut all = ctx.shared.databases();
    if all.iter().any(|db| db.name == name) {
        return Reply::cf_error(
            400,
            NAME_IN_USE,
            format!("A database with the name {name} already exists"),
        );
    }
    let r = util::random_hex(32);
    let uuid = format!(
        "{}-{}-4{}-8{}-{}",
        &r[..8],
        &r[8..12],
        &r[13..16],
        &r[17..20],
        &r[20..32]
    );
    let spec = crate::DatabaseSpec {
        uuid: uuid.clone(),
        name: name.to_owned(),
        path: ctx
            .shared
            .spool_dir
            .path()
            .join(format!("d1-{uuid}.sqlite")),
    };
    let db = match Database::open(&spec, ctx.shared.spool_dir.path()) {
        Ok(db) => db,
        Err(e) => return Reply::cf_error(500, 7500, format!("{e:#}")),
    };
    let reply = Reply::cf_ok(serde_json::json!({
        "uuid": db.uuid,
        "name": db.name,
        "created_at": db.created_at,
        "version": "production",
        "created_in_region": region,
    }));
    all.push(std::sync::Arc::new(db));
    reply
}

/// `DELETE /accounts/{account}/d1/database/{database}`: the database is no
/// longer served (its file goes with the server's temporary directory, or
/// stays where the configuration put it).
fn delete_database(ctx: &Ctx<'_>) -> Reply {
    let uuid = ctx.database().uuid.clone();
    ctx.shared.databases().retain(|db| db.uuid != uuid);
    Reply::cf_ok(serde_json::Value::Null)
}

#[derive(Serialize)]
struct ReadReplication {
    mode: &'static str,
}

/// The result of `GET .../d1/database/{database}`.
#[derive(Serialize)]
struct DatabaseInfo<'a> {
    uuid: &'a str,
    name: &'a str,
    created_at: &'a str,
    /// wrangler's Time Travel commands refuse databases whose version is
    /// `"alpha"`.
    version: &'static str,
    num_tables: u64,
    file_size: u64,
    running_in_region: &'static str,
    read_replication: ReadReplication,
}

/// `GET /accounts/{account}/d1/database/{database}`.
fn get_database(ctx: &Ctx<'_>) -> Reply {
    let db = ctx.database();
    let state = db.lock();
    let stats = state.num_tables().and_then(|n| Ok((n, state.file_size()?)));
    match stats {
        Ok((num_tables, file_size)) => Reply::cf_ok(DatabaseInfo {
            uuid: &db.uuid,
            name: &db.name,
            created_at: &db.created_at,
            version: "production",
            num_tables,
            file_size,
            running_in_region: "WNAM",
            read_replication: ReadReplication { mode: "disabled" },
        }),
        Err(e) => Reply::cf_error(500, 7500, e.to_string()),
    }
}

/// `POST /accounts/{account}/d1/database/{database}/query` with
/// `{"sql": "...", "params": [...]}`.
///
/// Errors are answered 400 with code 7500; wrangler prints the message as
/// a note under "A request to the Cloudflare API (...) failed.".
fn post_query(ctx: &Ctx<'_>) -> Reply {
    let body: serde_json::Value = match serde_json::from_slice(&ctx.req.body) {
        Ok(body) => body,
        Err(e) => {
            return Reply::cf_error(400, 7400, format!("Malformed JSON in request body: {e}"));
        }
    };
    let Some(sql) = body.get("sql").and_then(|s| s.as_str()) else {
        return Reply::cf_error(400, 7400, "The request body must have a string \"sql\"");
    };
    let params = match body.get("params") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(items)) => {
            match items
                .iter()
                .map(query::json_to_param)
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(params) => params,
                Err(message) => return Reply::cf_error(400, 7400, message),
            }
        }
        Some(_) => return Reply::cf_error(400, 7400, "\"params\" must be an array"),
    };
    if let Some(text) = ctx.shared.faults().query_fail_with
        && sql.contains(&text)
    {
        return Reply::cf_error(
            400,
            7500,
            "a fault injected by d1-loopback (Faults::query_fail_with): SQLITE_ERROR",
        );
    }
    if let Some((text, status, code, message)) = ctx.shared.faults().query_api_error_with
        && sql.contains(&text)
    {
        return Reply::cf_error(status, code, message);
    }
    match ctx.database().lock().query(sql, &params) {
        Ok(outcome) => Reply::cf_ok(outcome.results),
        Err(e) => Reply::cf_error(400, 7500, e.0),
    }
}

#[derive(Serialize)]
struct Bookmark {
    bookmark: String,
}

/// `GET .../time_travel/bookmark[?timestamp=RFC3339]`.
fn get_bookmark(ctx: &Ctx<'_>) -> Reply {
    let mut state = ctx.database().lock();
    let bookmark = match ctx.req.query_param("timestamp") {
        None => state.current_bookmark(),
        Some(ts) => match util::parse_iso8601(ts) {
            Some(ms) => state.bookmark_at(ms),
            None => return Reply::cf_error(400, 7400, format!("Invalid timestamp: {ts}")),
        },
    };
    Reply::cf_ok(Bookmark { bookmark })
}

/// The result of a Time Travel restore.
#[derive(Serialize)]
struct Restore {
    /// The bookmark restored to.
    bookmark: String,
    /// The bookmark of the state just before the restore, to undo it with.
    previous_bookmark: String,
    message: String,
}

/// `POST .../time_travel/restore?bookmark=<bookmark>` (or
/// `?timestamp=RFC3339`), with an empty body.
///
/// wrangler's `d1 time-travel restore --timestamp` asks
/// `time_travel/bookmark?timestamp=` for the bookmark itself and restores to
/// that; the API also takes the timestamp directly.
fn post_restore(ctx: &Ctx<'_>) -> Reply {
    if let Some(status) = ctx.shared.faults().time_travel_restore_status {
        return Reply::cf_error(
            status,
            crate::faults::code_for(status),
            "Time Travel restore failed: a fault injected by d1-loopback",
        );
    }
    let database = ctx.database();
    let mut state = database.lock();
    let bookmark = match (
        ctx.req.query_param("bookmark"),
        ctx.req.query_param("timestamp"),
    ) {
        (Some(bookmark), None) => bookmark.to_owned(),
        (None, Some(ts)) => match util::parse_iso8601(ts) {
            Some(ms) => state.bookmark_at(ms),
            None => return Reply::cf_error(400, 7400, format!("Invalid timestamp: {ts}")),
        },
        (Some(_), Some(_)) => {
            return Reply::cf_error(
                400,
                7400,
                "Provide either a bookmark or a timestamp to restore to, not both",
            );
        }
        (None, None) => {
            return Reply::cf_error(
                400,
                7400,
                "A bookmark or a timestamp to restore to is required",
            );
        }
    };
    let restored = match state.restore(&bookmark) {
        Ok(restored) => restored,
        Err(RestoreError::Malformed) => {
            return Reply::cf_error(400, 7400, format!("Invalid bookmark: {bookmark}"));
        }
        Err(RestoreError::Unknown) => {
            return Reply::cf_error(
                400,
                7400,
                format!(
                    "Bookmark {bookmark} is not a state of database {} that can be restored",
                    database.uuid
                ),
            );
        }
        Err(RestoreError::Failed(message)) => {
            return Reply::cf_error(
                500,
                7500,
                format!("Restoring to bookmark {bookmark} failed: {message}"),
            );
        }
    };
    drop(state);
    ctx.shared.record_restore(TimeTravelRestore {
        database_uuid: database.uuid.clone(),
        bookmark: restored.bookmark.clone(),
        previous_bookmark: restored.previous_bookmark.clone(),
    });
    if let Some(status) = ctx.shared.faults().time_travel_restore_applied_status {
        return Reply::cf_error(
            status,
            7500,
            "Internal error: a fault injected by d1-loopback after the restore was made",
        );
    }
    Reply::cf_ok(Restore {
        bookmark: restored.bookmark,
        previous_bookmark: restored.previous_bookmark,
        message: "Database restored successfully".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_routes_name_the_account_and_no_route_is_listed_twice() {
        for (i, route) in ROUTES.iter().enumerate() {
            // GraphQL names the account in the query's variables instead.
            if route.access == Access::ApiToken && route.pattern != "/client/v4/graphql" {
                assert!(route.pattern.contains("/{account}/"), "{}", route.pattern);
            }
            assert!(
                ROUTES[..i]
                    .iter()
                    .all(|r| (r.method, r.pattern) != (route.method, route.pattern)),
                "{} {} is listed twice",
                route.method,
                route.pattern
            );
        }
    }
}
