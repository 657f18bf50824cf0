//! moto's RDS behind a proxy of the tests' own that records each call
//! (its `Action` and form), can SIGKILL the runner once a given call was
//! answered, and can answer a status as RDS would while it works.
//!
//! moto answers every call at once (each snapshot, instance and cluster is
//! `available` straight away), so the proxy can answer a status as busy
//! (`creating`, `modifying`) a given number of times, for the waits. moto
//! runs no database: tests check the calls snapguard makes, in which order,
//! what RDS is left with, and the deploy's exit codes, journal and
//! maintenance.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::sync::{Arc, Mutex};

use super::*;

/// What the proxy saw, whom it kills after which call, and which answers
/// it makes look busy.
#[derive(Default)]
struct Seen {
    actions: Vec<String>,
    /// Each call's form (URL-encoded), beside `actions`.
    forms: Vec<String>,
    kill_after: Option<(String, u32)>,
    busy: Vec<Busy>,
}

/// `times` answers to `action`, once `after` was called, with `from`
/// replaced by `to`: RDS still working.
struct Busy {
    after: &'static str,
    action: &'static str,
    from: &'static str,
    to: &'static str,
    times: usize,
}

/// moto behind the proxy.
pub struct Rds {
    pub moto: MotoServer,
    pub endpoint: String,
    seen: Arc<Mutex<Seen>>,
}

impl Rds {
    /// moto with an RDS for PostgreSQL instance `prod`.
    pub fn start() -> Rds {
        let moto = MotoServer::start();
        // Made under another name and renamed: moto names the automated
        // snapshot it takes of a new instance `rds:<id>-<minute>`, and a
        // restore under the same name within that minute would collide
        // with it (real RDS has no such clash).
        moto.rds("Action=CreateDBInstance&DBInstanceIdentifier=setup&DBInstanceClass=db.t3.micro&Engine=postgres&MasterUsername=app&MasterUserPassword=passwordpassword&AllocatedStorage=20");
        moto.rds("Action=ModifyDBInstance&DBInstanceIdentifier=setup&NewDBInstanceIdentifier=prod&ApplyImmediately=true");
        Rds::behind_proxy(moto)
    }

    /// moto with an Aurora PostgreSQL cluster `prod` of two instances,
    /// `prod-1` (the writer, db.r6g.large) and `prod-2` (db.r6g.xlarge).
    pub fn aurora() -> Rds {
        let moto = MotoServer::start();
        moto.rds("Action=CreateDBCluster&DBClusterIdentifier=prod&Engine=aurora-postgresql&EngineVersion=15.4&MasterUsername=app&MasterUserPassword=passwordpassword");
        for (n, class) in [(1, "db.r6g.large"), (2, "db.r6g.xlarge")] {
            moto.rds(&format!("Action=CreateDBInstance&DBInstanceIdentifier=prod-{n}&DBClusterIdentifier=prod&DBInstanceClass={class}&Engine=aurora-postgresql"));
        }
        Rds::behind_proxy(moto)
    }

    fn behind_proxy(moto: MotoServer) -> Rds {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let upstream = moto.endpoint.trim_start_matches("http://").to_owned();
        let shared = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let (shared, upstream) = (shared.clone(), upstream.clone());
                std::thread::spawn(move || relay(client, &upstream, &shared));
            }
        });
        Rds {
            moto,
            endpoint,
            seen,
        }
    }

    /// Every call so far, in order.
    pub fn actions(&self) -> Vec<String> {
        self.seen.lock().unwrap().actions.clone()
    }

    /// How many times `action` was called.
    pub fn count(&self, action: &str) -> usize {
        self.actions().iter().filter(|a| *a == action).count()
    }

    /// SIGKILLs `child` once a call of `action` was answered.
    pub fn kill_after(&self, action: &str, child: &Child) {
        self.seen.lock().unwrap().kill_after = Some((action.to_owned(), child.id()));
    }

    /// Makes the next `times` answers to `action` after a call of `after`
    /// say `to` where moto says `from`.
    pub fn busy(
        &self,
        after: &'static str,
        action: &'static str,
        from: &'static str,
        to: &'static str,
        times: usize,
    ) {
        self.seen.lock().unwrap().busy.push(Busy {
            after,
            action,
            from,
            to,
            times,
        });
    }

    /// The instances moto has, by identifier.
    pub fn instances(&self) -> Vec<String> {
        tags(
            &self.moto.rds("Action=DescribeDBInstances"),
            "DBInstanceIdentifier",
        )
    }

    /// The manual snapshots moto has, by identifier.
    pub fn snapshots(&self) -> Vec<String> {
        tags(
            &self
                .moto
                .rds("Action=DescribeDBSnapshots&SnapshotType=manual"),
            "DBSnapshotIdentifier",
        )
    }

    /// A workspace deploying a fresh database `db` (one table, three rows)
    /// on the tests' server, whose snapshot provider is RDS instance
    /// `instance` here.
    pub fn workspace(&self, db: &str, instance: &str, extra: &str) -> Workspace {
        self.workspace_of(db, "rds", &format!("instance: {instance}"), extra)
    }

    /// As [`Rds::workspace`], with Aurora cluster `cluster`
    /// (`aurora-clone`).
    pub fn aurora_workspace(&self, db: &str, cluster: &str, extra: &str) -> Workspace {
        self.workspace_of(db, "aurora-clone", &format!("cluster: {cluster}"), extra)
    }

    fn workspace_of(&self, db: &str, provider: &str, target: &str, extra: &str) -> Workspace {
        create_db(db);
        psql(
            db,
            "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1), (2), (3);",
        );
        Workspace::for_db(
            db,
            &format!(
                "store:\n  url: file://./backups\nmaintenance:\n  - file: {{ path: maintenance.txt }}\nsnapshot:\n  provider: {provider}\n  rds:\n    {target}\n    region: us-east-1\n    endpoint: {}\n    wait: 2m\n{extra}",
                self.endpoint
            ),
        )
    }

    /// The forms of every call of `action` so far, in order.
    pub fn forms(&self, action: &str) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.actions
            .iter()
            .zip(&seen.forms)
            .filter(|(a, _)| *a == action)
            .map(|(_, f)| f.clone())
            .collect()
    }

    /// The Aurora clusters moto has, by identifier.
    pub fn clusters(&self) -> Vec<String> {
        let mut found = tags(
            &self.moto.rds("Action=DescribeDBClusters"),
            "DBClusterIdentifier",
        );
        found.sort();
        found.dedup();
        found
    }

    /// The manual cluster snapshots moto has, by identifier.
    pub fn cluster_snapshots(&self) -> Vec<String> {
        tags(
            &self
                .moto
                .rds("Action=DescribeDBClusterSnapshots&SnapshotType=manual"),
            "DBClusterSnapshotIdentifier",
        )
    }
}

/// Two deploys that succeed (`v1`, `v2`), each adding a table: two
/// provider snapshots, for `prune`.
pub fn deploy_twice(ws: &Workspace) {
    for (n, release) in [(1, "v1"), (2, "v2")] {
        ws.migrations(&[(
            format!("{n}_add.sql").as_str(),
            format!("CREATE TABLE t{n} (id int);\n").as_str(),
        )]);
        ws.run(&["deploy", "--release", release]).expect_code(0);
    }
}

/// The text of every `<tag>` in `xml`, in order.
pub fn tags(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split_once(close.as_str()).map(|(v, _)| v.to_owned()))
        .collect()
}

/// Relays each request of `client` to moto at `upstream`, recording its
/// `Action`, and kills who is to be killed once that call was answered.
fn relay(client: TcpStream, upstream: &str, seen: &Mutex<Seen>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut client = client;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let h = header.trim_end().to_owned();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
                if name.eq_ignore_ascii_case("connection") {
                    continue;
                }
            }
            headers.push(h);
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let form = String::from_utf8_lossy(&body).into_owned();
        let action = form
            .split('&')
            .find_map(|kv| kv.strip_prefix("Action=").map(str::to_owned))
            .unwrap_or_default();
        {
            let mut seen = seen.lock().unwrap();
            seen.actions.push(action.clone());
            seen.forms.push(form);
        }
        let mut moto = TcpStream::connect(upstream).unwrap();
        let mut request = request_line.clone();
        for h in &headers {
            request.push_str(h);
            request.push_str("\r\n");
        }
        request.push_str("Connection: close\r\n\r\n");
        moto.write_all(request.as_bytes()).unwrap();
        moto.write_all(&body).unwrap();
        let mut response = Vec::new();
        moto.read_to_end(&mut response).unwrap();
        let response = made_busy(response, &action, &mut seen.lock().unwrap());
        if client.write_all(&response).is_err() {
            return;
        }
        let kill = {
            let mut seen = seen.lock().unwrap();
            match &seen.kill_after {
                Some((after, pid)) if *after == action => {
                    let pid = *pid;
                    seen.kill_after = None;
                    Some(pid)
                }
                _ => None,
            }
        };
        if let Some(pid) = kill {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}

/// `response` to `action`, with the first matching [`Busy`] rule applied
/// (and its content length set again).
fn made_busy(response: Vec<u8>, action: &str, seen: &mut Seen) -> Vec<u8> {
    let called = seen.actions.clone();
    let Some(rule) = seen
        .busy
        .iter_mut()
        .find(|b| b.action == action && b.times > 0 && called.iter().any(|a| a == b.after))
    else {
        return response;
    };
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    if !body.contains(rule.from) {
        return text.into_bytes();
    }
    rule.times -= 1;
    let body = body.replace(rule.from, rule.to);
    let head: Vec<String> = head
        .lines()
        .map(|l| {
            if l.to_ascii_lowercase().starts_with("content-length:") {
                format!("Content-Length: {}", body.len())
            } else {
                l.to_owned()
            }
        })
        .collect();
    format!("{}\r\n\r\n{body}", head.join("\r\n")).into_bytes()
}

/// The position of the first call of `action` in `actions`.
pub fn position(actions: &[String], action: &str) -> usize {
    actions
        .iter()
        .position(|a| a == action)
        .unwrap_or_else(|| panic!("no {action} in {actions:?}"))
}
