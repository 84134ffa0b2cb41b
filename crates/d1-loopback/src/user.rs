//! The few user and account endpoints wrangler calls on its own.
//!
//! When any API request fails with code 10000 ("Authentication error"),
//! wrangler runs its `whoami` report to explain what the token may do:
//! `GET /user/tokens/verify`, then `GET /user` for an email, then
//! `GET /accounts` (and, since 4.164 or earlier, `GET /memberships` for the
//! token's roles). These handlers let that report run to its end, so a test
//! that uses a wrong token sees wrangler's normal failure and no unhandled
//! requests. They check the token themselves, answering a wrong one with the
//! codes wrangler treats as "no such detail" rather than with another 10000,
//! which would make wrangler start the report over.

use serde::Serialize;

use crate::api::Ctx;
use crate::http::{Reply, ResultInfo};

fn has_token(ctx: &Ctx<'_>) -> bool {
    let expected = format!("Bearer {}", ctx.shared.api_token);
    ctx.req.header("authorization") == Some(expected.as_str())
}

#[derive(Serialize)]
struct TokenStatus {
    id: &'static str,
    status: &'static str,
}

/// `GET /user/tokens/verify`. Cloudflare answers an unknown token with code
/// 1000, which wrangler reads as "an account token".
pub(crate) fn verify_token(ctx: &Ctx<'_>) -> Reply {
    if has_token(ctx) {
        Reply::cf_ok(TokenStatus {
            id: "d1-loopback",
            status: "active",
        })
    } else {
        Reply::cf_error(401, 1000, "Invalid API Token")
    }
}

#[derive(Serialize)]
struct User {
    id: &'static str,
    email: &'static str,
}

/// `GET /user`. Code 9109 makes wrangler report that it has no email.
pub(crate) fn get_user(ctx: &Ctx<'_>) -> Reply {
    if has_token(ctx) {
        Reply::cf_ok(User {
            id: "d1-loopback",
            email: "d1-loopback@example.com",
        })
    } else {
        Reply::cf_error(403, 9109, "Unauthorized to access requested resource")
    }
}

#[derive(Serialize)]
struct Account<'a> {
    id: &'a str,
    name: &'static str,
}

/// A paged list of one item about the one account this server knows: the
/// item on page 1, nothing after; a wrong token is refused as Cloudflare
/// refuses it for these lists.
fn one_account_list<'a, T: Serialize>(
    ctx: &'a Ctx<'_>,
    item: impl FnOnce(Account<'a>) -> T,
) -> Reply {
    if !has_token(ctx) {
        return Reply::cf_error(403, 9109, "Invalid access token");
    }
    let page = ctx
        .req
        .query_param("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1);
    let items = if page == 1 {
        vec![item(Account {
            id: &ctx.shared.account_id,
            name: "d1-loopback",
        })]
    } else {
        Vec::new()
    };
    let info = ResultInfo {
        page,
        per_page: 20,
        count: items.len(),
        total_count: 1,
    };
    Reply::cf_ok_paged(items, Some(info))
}

/// `GET /accounts`: the one account this server knows, on page 1.
pub(crate) fn list_accounts(ctx: &Ctx<'_>) -> Reply {
    one_account_list(ctx, |account| account)
}

#[derive(Serialize)]
struct Membership<'a> {
    id: &'static str,
    status: &'static str,
    account: Account<'a>,
    roles: [&'static str; 1],
}

/// `GET /memberships`, which wrangler 4.164's report after an
/// authentication error reads for the token's roles in the account: the
/// one account this server knows, on page 1.
pub(crate) fn list_memberships(ctx: &Ctx<'_>) -> Reply {
    one_account_list(ctx, |account| Membership {
        id: "d1-loopback-membership",
        status: "accepted",
        account,
        roles: ["Administrator"],
    })
}
