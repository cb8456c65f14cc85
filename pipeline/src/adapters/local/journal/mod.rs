//! The append journal: how a queue append becomes durable without waiting
//! for the database.
//!
//! A sender writes its message as one record, with one `write(2)`, to this
//! process's journal file (opened `O_APPEND`, so concurrent records never
//! interleave) and is answered as soon as the call returns: from then on
//! the message survives the process being killed, as a committed SQLite
//! write in WAL mode with `synchronous=NORMAL` does. The database thread
//! later moves the records into the queue table in large transactions,
//! storing in the same transaction how far it has read, and before every
//! other database call, so each call sees every append made before it.
//!
//! Each process writes its own segment files ([`segment`]) in `<database>-appends/` and
//! holds an exclusive lock on the one it is writing. A segment is rotated
//! once it is large and fully read. The segments of a process that died
//! (their lock is gone) are adopted: read to the end, then deleted
//! ([`drain`]). The format of one record is in [`record`].

mod drain;
mod record;
mod segment;

pub(crate) use drain::Reader;
pub(crate) use record::Record;
pub(crate) use segment::Journal;

#[cfg(test)]
pub(crate) mod tests {
    //! Helpers the journal's tests share.

    use rusqlite::Connection;

    use super::Record;

    pub fn record(n: usize) -> Record {
        Record { stage: "inbound".into(), body: format!("{{\"n\":{n}}}"), visible_ms: n as i64, sent_ms: 7 }
    }

    /// An empty database with our tables.
    pub fn database() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        super::super::database::create_schema(&conn).unwrap();
        conn
    }

    /// The first column of every row `sql` selects.
    pub fn column<T: rusqlite::types::FromSql>(conn: &Connection, sql: &str) -> Vec<T> {
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    }
}
