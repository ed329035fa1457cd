//! What each kind of request a delivery makes costs Cassandra: its CPU per request, at 10 in
//! flight, for plain writes, reads, the lightweight transaction, the counter and batches.
//!
//! ```sh
//! eval "$(devtools/services env)"
//! cargo run --release -p palisade-store --example cassandra_costs -- 4000 4
//! ```
//!
//! Arguments: requests per case (default 4000) and rounds (default 4; Cassandra's JIT is
//! still warming up in the first two, so read the last). Cassandra's CPU is read from
//! `/proc/PID/stat`, PID from `PALISADE_CASSANDRA_PID` or `devtools/services`' pid file. The
//! cases run in a keyspace of their own, dropped at the end. A measurement, not a test.

use futures::StreamExt;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use std::path::PathBuf;
use std::time::Instant;
use uuid::Uuid;

/// Requests in flight, as at 10 LMTP sessions.
const IN_FLIGHT: usize = 10;

/// One kind of request.
#[derive(Clone, Copy)]
enum Case {
    Insert1KiB,
    InsertSmallOnePartition,
    SelectByKey,
    LwtInsert,
    CounterAdd,
    Batch {
        kind: BatchType,
        rows: usize,
        one_partition: bool,
    },
}

impl Case {
    /// The row of the printed table.
    fn name(self) -> String {
        match self {
            Case::Insert1KiB => "insert, 1 KiB row".into(),
            Case::InsertSmallOnePartition => "insert, 100 B row, one partition".into(),
            Case::SelectByKey => "select one row by key".into(),
            Case::LwtInsert => "insert if not exists (LWT)".into(),
            Case::CounterAdd => "counter + 1".into(),
            Case::Batch {
                kind,
                rows,
                one_partition,
            } => format!(
                "{} batch, {rows} rows in {}",
                match kind {
                    BatchType::Logged => "logged",
                    BatchType::Unlogged => "unlogged",
                    BatchType::Counter => "counter",
                },
                if one_partition {
                    "one partition".to_string()
                } else {
                    format!("{rows} partitions")
                }
            ),
        }
    }
}

/// The prepared statements and fixed values the cases use.
struct Bench {
    session: Session,
    insert: PreparedStatement,
    lwt: PreparedStatement,
    counter: PreparedStatement,
    select: PreparedStatement,
    partition: Uuid,
    keys: Vec<(Uuid, Uuid)>,
    kib: Vec<u8>,
    small: Vec<u8>,
}

impl Bench {
    /// Sends the `i`-th request of a case.
    async fn request(&self, case: Case, i: usize) -> anyhow::Result<()> {
        match case {
            Case::Insert1KiB => {
                self.session
                    .execute_unpaged(&self.insert, (Uuid::new_v4(), Uuid::new_v4(), &self.kib))
                    .await?;
            }
            Case::InsertSmallOnePartition => {
                self.session
                    .execute_unpaged(&self.insert, (self.partition, Uuid::new_v4(), &self.small))
                    .await?;
            }
            Case::SelectByKey => {
                let key = self.keys[i % self.keys.len()];
                self.session.execute_unpaged(&self.select, key).await?;
            }
            Case::LwtInsert => {
                self.session
                    .execute_unpaged(&self.lwt, (Uuid::new_v4(), &self.small))
                    .await?;
            }
            Case::CounterAdd => {
                self.session
                    .execute_unpaged(&self.counter, (self.partition,))
                    .await?;
            }
            Case::Batch {
                kind,
                rows,
                one_partition,
            } => {
                let mut batch = Batch::new(kind);
                let mut values = Vec::with_capacity(rows);
                for _ in 0..rows {
                    batch.append_statement(self.insert.clone());
                    let p = if one_partition {
                        self.partition
                    } else {
                        Uuid::new_v4()
                    };
                    values.push((p, Uuid::new_v4(), self.small.as_slice()));
                }
                self.session.batch(&batch, values).await?;
            }
        }
        Ok(())
    }

    /// Sends `n` requests of a case, `IN_FLIGHT` at a time.
    async fn run(&self, case: Case, n: usize) -> anyhow::Result<()> {
        let mut done = futures::stream::iter(0..n)
            .map(|i| self.request(case, i))
            .buffer_unordered(IN_FLIGHT);
        while let Some(r) = done.next().await {
            r?;
        }
        Ok(())
    }
}

/// Cassandra's CPU seconds so far (user and system).
fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("unexpected /proc/{pid}/stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .ok_or_else(|| anyhow::anyhow!("unexpected /proc/{pid}/stat"))?
        .iter()
        .map(|f| f.parse::<f64>())
        .sum::<Result<f64, _>>()?;
    // Linux reports these in USER_HZ, 100 on every architecture Debian ships.
    Ok(ticks / 100.0)
}

/// Cassandra's PID: `PALISADE_CASSANDRA_PID`, or the pid file of `devtools/services`.
fn cassandra_pid() -> anyhow::Result<String> {
    if let Ok(pid) = std::env::var("PALISADE_CASSANDRA_PID") {
        return Ok(pid);
    }
    let run_dir = std::env::var_os("PALISADE_RUN_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".local/state/palisade-services"))
        })
        .ok_or_else(|| anyhow::anyhow!("set PALISADE_CASSANDRA_PID"))?;
    let file = run_dir.join("cassandra/cassandra.pid");
    Ok(std::fs::read_to_string(&file)
        .map_err(|e| anyhow::anyhow!("{}: {e}; set PALISADE_CASSANDRA_PID", file.display()))?
        .trim()
        .to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4000);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4);
    let nodes = std::env::var("PALISADE_CASSANDRA_NODES").unwrap_or("127.0.0.1:9042".into());
    let pid = cassandra_pid()?;
    let session = SessionBuilder::new()
        .known_nodes(nodes.split(',').map(str::trim))
        .build()
        .await?;
    let keyspace = format!("costs_{}", &Uuid::new_v4().simple().to_string()[..8]);
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE {keyspace} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            (),
        )
        .await?;
    for table in [
        "t (p uuid, c uuid, v blob, PRIMARY KEY (p, c))",
        "k (p uuid PRIMARY KEY, v blob)",
        "n (p uuid PRIMARY KEY, n counter)",
    ] {
        session
            .query_unpaged(format!("CREATE TABLE {keyspace}.{table}"), ())
            .await?;
    }
    let prepare = |cql: String| session.prepare(cql);
    let insert = prepare(format!(
        "INSERT INTO {keyspace}.t (p, c, v) VALUES (?, ?, ?)"
    ))
    .await?;
    let bench = Bench {
        lwt: prepare(format!(
            "INSERT INTO {keyspace}.k (p, v) VALUES (?, ?) IF NOT EXISTS"
        ))
        .await?,
        counter: prepare(format!("UPDATE {keyspace}.n SET n = n + 1 WHERE p = ?")).await?,
        select: prepare(format!("SELECT v FROM {keyspace}.t WHERE p = ? AND c = ?")).await?,
        insert,
        partition: Uuid::new_v4(),
        keys: (0..5000)
            .map(|_| (Uuid::new_v4(), Uuid::new_v4()))
            .collect(),
        kib: vec![b'x'; 1024],
        small: vec![b'y'; 100],
        session,
    };
    // The rows the reads find.
    let fill = futures::stream::iter(bench.keys.iter().map(|&(p, c)| {
        bench
            .session
            .execute_unpaged(&bench.insert, (p, c, bench.small.as_slice()))
    }))
    .buffer_unordered(IN_FLIGHT);
    fill.for_each(|_| async {}).await;

    let cases = [
        Case::Insert1KiB,
        Case::InsertSmallOnePartition,
        Case::SelectByKey,
        Case::LwtInsert,
        Case::CounterAdd,
        Case::Batch {
            kind: BatchType::Logged,
            rows: 4,
            one_partition: false,
        },
        Case::Batch {
            kind: BatchType::Unlogged,
            rows: 4,
            one_partition: false,
        },
        Case::Batch {
            kind: BatchType::Unlogged,
            rows: 10,
            one_partition: true,
        },
    ];
    println!("| round | request | req/s | Cassandra CPU per request |");
    println!("| --- | --- | --- | --- |");
    for round in 1..=rounds {
        for case in cases {
            bench.run(case, n / 4).await?;
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let (cpu0, t0) = (cpu_seconds(&pid)?, Instant::now());
            bench.run(case, n).await?;
            let (cpu1, secs) = (cpu_seconds(&pid)?, t0.elapsed().as_secs_f64());
            println!(
                "| {round} | {} | {:.0} | {:.0} µs |",
                case.name(),
                n as f64 / secs,
                (cpu1 - cpu0) * 1e6 / n as f64
            );
        }
    }
    bench
        .session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), ())
        .await?;
    Ok(())
}
