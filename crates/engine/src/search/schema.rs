//! The index's fields. One document per message identity (task, mailbox, message id); see
//! docs/ARCHITECTURE.md "Search".

use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, FAST,
    INDEXED, STORED, STRING, TEXT,
};

/// Handles to every field, by name as the query language uses them.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// `task/user id/message id`: the document's identity (updates replace by this term).
    pub key: Field,
    pub task: Field,
    pub user_id: Field,
    /// `mailbox:` address and display name.
    pub mailbox: Field,
    /// The mailbox address as shown in results.
    pub address: Field,
    /// `folder:` slash-separated path from the mailbox root.
    pub folder: Field,
    pub message_id: Field,
    pub subject: Field,
    /// `from:` display form, "Name <address>".
    pub from: Field,
    /// `to:` every To, Cc and Bcc name and address.
    pub to: Field,
    /// The body as text (HTML stripped), stored for snippets.
    pub body: Field,
    /// `attachment:` names, and the text of text-like attachments.
    pub attachment: Field,
    /// `has:attachment`.
    pub has: Field,
    /// Received (else sent) time in ms; sorts results and answers `before:`/`after:`.
    pub date: Field,
    pub size: Field,
    pub has_attachments: Field,
    /// When the message was first missing from a snapshot (absent while it exists).
    pub deleted_ms: Field,
    /// For a deleted message, the last snapshot that holds it.
    pub snapshot: Field,
}

impl Fields {
    pub fn schema() -> (Schema, Fields) {
        let mut b = Schema::builder();
        let text_stored = TextOptions::default().set_stored().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("default")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let stored_i64 = NumericOptions::default().set_stored();
        let fields = Fields {
            key: b.add_text_field("key", STRING | FAST),
            task: b.add_i64_field("task", INDEXED | STORED),
            user_id: b.add_text_field("user_id", STRING | STORED),
            mailbox: b.add_text_field("mailbox", TEXT),
            address: b.add_text_field("address", STORED),
            folder: b.add_text_field("folder", text_stored.clone()),
            message_id: b.add_text_field("message_id", STRING | STORED),
            subject: b.add_text_field("subject", text_stored.clone()),
            from: b.add_text_field("from", text_stored.clone()),
            to: b.add_text_field("to", TEXT),
            body: b.add_text_field("body", text_stored),
            attachment: b.add_text_field("attachment", TEXT),
            has: b.add_text_field("has", STRING),
            date: b.add_i64_field("date", INDEXED | FAST | STORED),
            size: b.add_u64_field("size", stored_i64.clone()),
            has_attachments: b.add_bool_field("has_attachments", STORED),
            deleted_ms: b.add_i64_field("deleted_ms", stored_i64.clone()),
            snapshot: b.add_text_field("snapshot", STORED),
        };
        (b.build(), fields)
    }

    /// The fields that free text (words without a `field:`) searches.
    pub fn default_fields(&self) -> Vec<Field> {
        vec![self.subject, self.from, self.to, self.body, self.attachment]
    }

    /// Resolves the handles in an existing index's schema (written by [`Fields::schema`]).
    pub fn of(schema: &Schema) -> tantivy::Result<Fields> {
        let f = |name: &str| schema.get_field(name);
        Ok(Fields {
            key: f("key")?,
            task: f("task")?,
            user_id: f("user_id")?,
            mailbox: f("mailbox")?,
            address: f("address")?,
            folder: f("folder")?,
            message_id: f("message_id")?,
            subject: f("subject")?,
            from: f("from")?,
            to: f("to")?,
            body: f("body")?,
            attachment: f("attachment")?,
            has: f("has")?,
            date: f("date")?,
            size: f("size")?,
            has_attachments: f("has_attachments")?,
            deleted_ms: f("deleted_ms")?,
            snapshot: f("snapshot")?,
        })
    }
}
