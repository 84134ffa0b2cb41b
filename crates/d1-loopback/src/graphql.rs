//! The one GraphQL query wrangler sends on its own: `wrangler d1 info`'s
//! `getD1MetricsOverviewQuery`, which sums a database's last 24 hours of
//! `d1AnalyticsAdaptiveGroups`.
//!
//! This server keeps no analytics, so it answers with one hourly group whose
//! sums are all zero, in the shape wrangler reads
//! (`data.viewer.accounts[0].d1AnalyticsAdaptiveGroups[].sum`). `wrangler
//! d1 insights` asks for `d1QueriesAdaptiveGroups`, which gets an empty
//! list. `wrangler r2 bucket info`'s `getR2StorageMetrics` asks for
//! `r2StorageAdaptiveGroups`, which gets the bucket's object count and size
//! as they are now (real R2 analytics lag behind), or an empty list for a
//! bucket that does not exist. Any other query is answered with a GraphQL
//! error and recorded as unhandled.

use serde_json::json;

use crate::api::Ctx;
use crate::http::Reply;
use crate::r2;
use crate::util;

/// A GraphQL error answer, which the GraphQL endpoint sends with status 200.
fn graphql_error(message: &str) -> Reply {
    Reply::json(
        200,
        &json!({"data": null, "errors": [{"message": message, "path": null}]}),
    )
}

/// `POST /client/v4/graphql`.
pub(crate) fn query(ctx: &Ctx<'_>) -> Reply {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&ctx.req.body) else {
        return graphql_error("the request body is not JSON").mark_unhandled();
    };
    let query = body
        .get("query")
        .and_then(|q| q.as_str())
        .unwrap_or_default();
    let account = body
        .pointer("/variables/accountTag")
        .and_then(|a| a.as_str());
    let groups = if query.contains("d1AnalyticsAdaptiveGroups") {
        "d1AnalyticsAdaptiveGroups"
    } else if query.contains("d1QueriesAdaptiveGroups") {
        "d1QueriesAdaptiveGroups"
    } else if query.contains("r2StorageAdaptiveGroups") {
        "r2StorageAdaptiveGroups"
    } else {
        return graphql_error("d1-loopback answers only D1's and R2's analytics queries")
            .mark_unhandled();
    };
    if account != Some(ctx.shared.account_id.as_str()) {
        return graphql_error("not authorized for that account");
    }
    let rows = if groups == "d1AnalyticsAdaptiveGroups" {
        // The current hour, as `datetimeHour` dimensions are written.
        let now = util::iso8601(util::now_ms());
        let hour = format!("{}:00:00Z", &now[..13]);
        json!([{
            "sum": {"readQueries": 0, "writeQueries": 0, "rowsRead": 0, "rowsWritten": 0},
            "dimensions": {"datetimeHour": hour},
        }])
    } else if groups == "r2StorageAdaptiveGroups" {
        let bucket = body
            .pointer("/variables/filter/bucketName")
            .and_then(|b| b.as_str())
            .unwrap_or_default();
        match r2::storage_metrics(ctx.shared, bucket) {
            Some((count, size)) => json!([{
                "max": {"objectCount": count, "payloadSize": size, "metadataSize": 0},
                "dimensions": {"datetime": util::iso8601(util::now_ms())},
            }]),
            None => json!([]),
        }
    } else {
        json!([])
    };
    Reply::json(
        200,
        &json!({
            "data": {"viewer": {"accounts": [{groups: rows}]}},
            "errors": null,
        }),
    )
}
