//! `d1-loopback`: serves D1 databases on 127.0.0.1 until killed.
//!
//! ```text
//! d1-loopback --account ID --token T --db NAME=UUID=PATH [--db ...] [--bucket NAME ...]
//!             [--download-rate BYTES_PER_SEC]
//! ```
//!
//! Each `--bucket` makes an empty R2 bucket; its objects live in a temporary
//! directory and go away when the server stops.
//!
//! It prints the API base URL (the value for `CLOUDFLARE_API_BASE_URL`) on
//! stdout, then serves.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use d1_loopback::{Config, DatabaseSpec, Server};

const USAGE: &str = "usage: d1-loopback --account ID --token T --db NAME=UUID=PATH [--db ...] \
                     [--bucket NAME ...] [--download-rate BYTES_PER_SEC]";

/// What the command line asks for.
struct Args {
    config: Config,
    buckets: Vec<String>,
    /// Exports are downloaded at this rate, as over a network.
    download_rate: Option<u64>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let (mut account_id, mut api_token, mut databases) = (None, None, Vec::new());
    let (mut buckets, mut download_rate) = (Vec::new(), None);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--account" => account_id = Some(value()?),
            "--token" => api_token = Some(value()?),
            "--db" => {
                let spec = value()?;
                let mut parts = spec.splitn(3, '=');
                let (Some(name), Some(uuid), Some(path)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    bail!("--db wants NAME=UUID=PATH, got {spec:?}");
                };
                databases.push(DatabaseSpec {
                    uuid: uuid.to_owned(),
                    name: name.to_owned(),
                    path: PathBuf::from(path),
                });
            }
            "--bucket" => buckets.push(value()?),
            "--download-rate" => {
                let rate = value()?;
                download_rate = Some(rate.parse().with_context(|| {
                    format!("--download-rate wants bytes a second, got {rate:?}")
                })?);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(Args {
        config: Config {
            account_id: account_id.with_context(|| format!("--account is required\n{USAGE}"))?,
            api_token: api_token.with_context(|| format!("--token is required\n{USAGE}"))?,
            databases,
            work_dir: None,
        },
        buckets,
        download_rate,
    })
}

fn main() -> anyhow::Result<()> {
    let args = parse_args(std::env::args().skip(1))?;
    let server = Server::start(args.config)?;
    for bucket in &args.buckets {
        server.add_bucket(bucket);
    }
    if args.download_rate.is_some() {
        server.set_faults(d1_loopback::Faults {
            download_bytes_per_sec: args.download_rate,
            ..d1_loopback::Faults::default()
        });
    }
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", server.api_base_url())?;
    stdout.flush()?;
    // The server thread does the work; this one only keeps it alive.
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Config> {
        parse_args(args.iter().map(|a| (*a).to_owned())).map(|args| args.config)
    }

    #[test]
    fn parses_repeated_databases() {
        let config = parse(&[
            "--account",
            "acct",
            "--token",
            "tok",
            "--db",
            "a=u1=/tmp/a.sqlite",
            "--db",
            "b=u2=rel/b=c.sqlite",
        ])
        .unwrap();
        assert_eq!(config.account_id, "acct");
        assert_eq!(config.api_token, "tok");
        assert_eq!(config.databases.len(), 2);
        assert_eq!(config.databases[1].name, "b");
        assert_eq!(config.databases[1].uuid, "u2");
        assert_eq!(config.databases[1].path, PathBuf::from("rel/b=c.sqlite"));
    }

    #[test]
    fn parses_buckets() {
        let args = parse_args(
            [
                "--account",
                "a",
                "--token",
                "t",
                "--bucket",
                "b1",
                "--bucket",
                "b2",
            ]
            .into_iter()
            .map(str::to_owned),
        )
        .unwrap();
        assert_eq!(args.buckets, ["b1", "b2"]);
        assert!(args.config.databases.is_empty());
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(parse(&["--token", "t"]).is_err());
        assert!(parse(&["--account", "a", "--token", "t", "--db", "nouuid"]).is_err());
        assert!(parse(&["--account"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
        assert!(parse(&["--account", "a", "--token", "t", "--bucket"]).is_err());
    }
}
