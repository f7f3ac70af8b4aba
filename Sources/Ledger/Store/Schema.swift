import GRDB

/// The store's schema, applied by GRDB's migrator. Migrations are append-only.
enum Schema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta (
                    key TEXT PRIMARY KEY NOT NULL,
                    value BLOB NOT NULL
                ) WITHOUT ROWID;

                -- A block seals the readings with rowid first_rowid ..< first_rowid + count, in
                -- rowid order (leaf = rowid - first_rowid): sealing writes one row, not one per reading.
                CREATE TABLE block (
                    height INTEGER PRIMARY KEY NOT NULL,
                    hash BLOB NOT NULL UNIQUE,
                    time INTEGER NOT NULL,
                    count INTEGER NOT NULL,
                    first_rowid INTEGER NOT NULL UNIQUE,
                    header BLOB NOT NULL
                );

                -- rowid is arrival order; rows are never deleted, so it only grows. Readings after
                -- the last block's range are pending.
                CREATE TABLE reading (
                    rowid INTEGER PRIMARY KEY,
                    id BLOB NOT NULL UNIQUE,
                    device TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    time INTEGER NOT NULL,
                    encoded BLOB NOT NULL,
                    UNIQUE (device, seq)
                );
                CREATE INDEX reading_device_time ON reading(device, time);
                """)
        }
        m.registerMigration("v2-anchor") { db in
            try db.execute(sql: """
                -- Every valid anchor block this node has seen (active chain and side chains), as
                -- the Consensus module encoded it; replayed and re-validated on start.
                CREATE TABLE anchor (
                    hash BLOB PRIMARY KEY NOT NULL,
                    height INTEGER NOT NULL,
                    encoded BLOB NOT NULL
                );
                CREATE INDEX anchor_height ON anchor(height);
                """)
        }
        m.registerMigration("v3-devices") { db in
            try db.execute(sql: """
                -- Who may write as each device: the key its readings must be signed by (bound on
                -- first use or by registration) and, for devices with their own credential, the
                -- SHA-256 of its token. signer is NULL until the first reading or a registration.
                CREATE TABLE device (
                    device TEXT PRIMARY KEY NOT NULL,
                    signer BLOB,
                    token_hash BLOB,
                    bound_by TEXT NOT NULL,
                    bound_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                -- Devices that already have readings are bound to the signer of their newest one
                -- (the signer is the 32 bytes before the 64-byte signature at the end of the encoding).
                INSERT INTO device(device, signer, token_hash, bound_by, bound_at)
                    SELECT r.device, substr(r.encoded, length(r.encoded) - 95, 32), NULL, 'first-use', r.time
                    FROM reading r
                    WHERE r.rowid = (SELECT MAX(rowid) FROM reading WHERE device = r.device);
                """)
        }
        m.registerMigration("v4-leaves") { db in
            // Each block's Merkle leaf hashes (32 bytes each, in leaf order), kept when it is sealed
            // so a proof reads one row instead of re-reading and re-hashing every reading of the block.
            // NULL for blocks sealed before this migration: their proofs rebuild the leaves.
            try db.execute(sql: "ALTER TABLE block ADD COLUMN leaves BLOB")
        }
        m.registerMigration("v5-anchor-final") { db in
            try db.execute(sql: """
                -- The active anchor chain below the finality depth, by height: these blocks can no
                -- longer be reorganised away, and the node no longer holds them in memory.
                CREATE TABLE anchor_final (
                    height INTEGER PRIMARY KEY NOT NULL,
                    hash BLOB NOT NULL
                );
                -- For each final anchor block, the segment heads it commits: the first row of an
                -- owner with segment_height >= h names the anchor block that first commits h.
                CREATE TABLE anchor_commit (
                    owner BLOB NOT NULL,
                    segment_height INTEGER NOT NULL,
                    anchor_height INTEGER NOT NULL,
                    PRIMARY KEY (owner, segment_height)
                ) WITHOUT ROWID;
                """)
        }
        m.registerMigration("v6-forward-queue") { db in
            try db.execute(sql: """
                -- Readings from sources that cannot send again (MQTT, sensors) whose owner in the
                -- ring could not be reached: delivered in this order when it can be.
                CREATE TABLE forward_queue (
                    id INTEGER PRIMARY KEY,
                    device TEXT NOT NULL,
                    submission BLOB NOT NULL,
                    queued_at INTEGER NOT NULL
                );
                CREATE INDEX forward_queue_device ON forward_queue(device);
                """)
        }
        m.registerMigration("v7-retention") { db in
            try db.execute(sql: """
                -- Readings whose payloads retention dropped: their ids, and where each was sealed
                -- (block height, leaf). The block headers stay, so the chain still verifies.
                CREATE TABLE pruned (
                    id BLOB PRIMARY KEY NOT NULL,
                    height INTEGER NOT NULL,
                    leaf INTEGER NOT NULL
                ) WITHOUT ROWID;
                -- A device's newest pruned seq: its numbering continues after it even when
                -- none of its readings is left.
                ALTER TABLE device ADD COLUMN pruned_seq INTEGER;
                """)
        }
        m.registerMigration("v8-block-hash-not-indexed") { db in
            // Nothing looks a block up by its hash (heights are the key; a hash follows from its
            // header), but the UNIQUE constraint kept an index whose random-keyed leaves every
            // sealed block rewrote: at a block a second, about 1 KiB written per block for nothing
            // (`flowchain bench disk`). SQLite cannot drop a constraint's index: the table is copied.
            try db.execute(sql: """
                CREATE TABLE block_v8 (
                    height INTEGER PRIMARY KEY NOT NULL,
                    hash BLOB NOT NULL,
                    time INTEGER NOT NULL,
                    count INTEGER NOT NULL,
                    first_rowid INTEGER NOT NULL UNIQUE,
                    header BLOB NOT NULL,
                    leaves BLOB
                );
                INSERT INTO block_v8(height, hash, time, count, first_rowid, header, leaves)
                    SELECT height, hash, time, count, first_rowid, header, leaves FROM block;
                DROP TABLE block;
                ALTER TABLE block_v8 RENAME TO block;
                """)
        }
        m.registerMigration("v9-id-index-by-arrival") { db in
            // The index of reading ids was keyed by the id alone: random keys, so on a big ledger
            // every new reading dirtied a leaf no other new reading shared, and each WAL checkpoint
            // wrote those 1 KiB pages back as whole 4 KiB blocks — about 8 KB per reading at 1 M
            // readings (`flowchain bench disk --disk-prefill`). Keyed by (arrival bucket, id), new
            // readings share the few leaves of the newest bucket; a lookup by id probes the buckets
            // (`LedgerStore.rowid(of:)`). UNIQUE(id) is implied by UNIQUE(device, seq): the id
            // hashes both. SQLite cannot drop a constraint's index: the table is copied.
            try db.execute(sql: """
                CREATE TABLE reading_v9 (
                    rowid INTEGER PRIMARY KEY,
                    id BLOB NOT NULL,
                    device TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    time INTEGER NOT NULL,
                    encoded BLOB NOT NULL,
                    UNIQUE (device, seq)
                );
                INSERT INTO reading_v9(rowid, id, device, seq, time, encoded)
                    SELECT rowid, id, device, seq, time, encoded FROM reading;
                DROP TABLE reading;
                ALTER TABLE reading_v9 RENAME TO reading;
                CREATE INDEX reading_device_time ON reading(device, time);
                CREATE INDEX reading_id_by_arrival ON reading(rowid >> 14, id);
                """)
        }
        m.registerMigration("v10-id-index-by-complete-bucket") { db in
            // Keyed by (arrival bucket, id), each new reading still dirtied a random leaf among the
            // newest bucket's (hundreds of 1 KiB leaves at 16,384 readings a bucket), which the
            // next checkpoint wrote back as a whole 4 KiB block: about 2 KB per reading at 1
            // reading/s on a ledger of 1 M readings (`flowchain bench disk --disk-prefill`). Now a
            // bucket's ids are indexed at once, sorted, when the bucket is complete (appends: each
            // leaf written once); the newest, incomplete bucket (at most 4,096 readings) is scanned.
            try db.execute(sql: """
                CREATE TABLE reading_id (
                    bucket INTEGER NOT NULL,
                    id BLOB NOT NULL,
                    row INTEGER NOT NULL,
                    PRIMARY KEY (bucket, id)
                ) WITHOUT ROWID;
                DROP INDEX reading_id_by_arrival;
                """)
            try LedgerStore.indexCompleteBuckets(db)
        }
        return m
    }
}
