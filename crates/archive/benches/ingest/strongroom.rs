//! Strongroom's ingest, the way the engine does it: each attachment its own blob, the
//! message without its attachment bodies another, one tree per folder, one snapshot.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use strongroom_archive::{Archive, BlobId, BlobKind, KdfParams, Tree};

use crate::base64::base64_decode_canonical;
use crate::PASSWORD;

/// Splits base64 attachment bodies out of a message: returns the message with each such
/// body replaced by a reference line, and the decoded attachments. A body is split out
/// only if re-encoding reproduces it exactly, so restore is bit-exact.
fn split_attachments(eml: &str) -> (String, Vec<Vec<u8>>) {
    let mut skeleton = String::with_capacity(eml.len().min(64 * 1024));
    let mut attachments = Vec::new();
    let mut rest = eml;
    const MARK: &str = "Content-Transfer-Encoding: base64\r\n\r\n";
    while let Some(pos) = rest.find(MARK) {
        let start = pos + MARK.len();
        let end = rest[start..]
            .find("\r\n--")
            .map_or(rest.len(), |e| start + e + 2);
        let body = &rest[start..end];
        skeleton.push_str(&rest[..start]);
        match base64_decode_canonical(body) {
            Some(data) => {
                skeleton.push_str(&format!(
                    "X-Strongroom-Attachment: {}\r\n",
                    attachments.len()
                ));
                attachments.push(data);
            }
            _ => skeleton.push_str(body),
        }
        rest = &rest[end..];
    }
    skeleton.push_str(rest);
    (skeleton, attachments)
}

pub(crate) fn eml_files(dir: &Path) -> BTreeMap<PathBuf, Vec<PathBuf>> {
    let mut folders: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "eml") {
                folders.entry(d.clone()).or_default().push(p);
            }
        }
    }
    for files in folders.values_mut() {
        files.sort();
    }
    folders
}

/// Ingests every `.eml` file under `eml` into a new archive at `repo`; returns seconds.
pub(crate) fn ingest_strongroom(eml: &Path, repo: &Path) -> f64 {
    let archive = Archive::init_local(repo, PASSWORD, KdfParams::production()).unwrap();
    let started = Instant::now();
    let mut w = archive.writer().unwrap();
    let mut folder_trees = Vec::new();
    for (folder, files) in eml_files(eml) {
        let mut children: Vec<BlobId> = Vec::new();
        let mut manifest = String::from("[");
        for f in files {
            let text = fs::read_to_string(&f).unwrap();
            let (skeleton, attachments) = split_attachments(&text);
            let message = w.put_blob(BlobKind::Data, skeleton.as_bytes()).unwrap();
            children.push(message);
            let mut refs = Vec::new();
            for a in attachments {
                let ids = if a.len() > 4 << 20 {
                    w.put_stream(&a[..]).unwrap()
                } else {
                    vec![w.put_blob(BlobKind::Data, &a).unwrap()]
                };
                refs.push(children.len());
                children.extend(ids);
            }
            manifest.push_str(&format!(
                "{{\"file\":{:?},\"message\":{},\"attachments\":{:?}}},",
                f.file_name().unwrap().to_string_lossy(),
                children.len() - 1 - refs.len(),
                refs
            ));
        }
        manifest.push(']');
        let meta = format!(
            "{{\"folder\":{:?},\"items\":{manifest}}}",
            folder.display().to_string()
        );
        folder_trees.push(
            w.put_tree(&Tree {
                children,
                meta: meta.into_bytes(),
            })
            .unwrap(),
        );
    }
    let root = w
        .put_tree(&Tree {
            children: folder_trees,
            meta: b"{}".to_vec(),
        })
        .unwrap();
    w.commit_snapshot(root, b"{\"kind\":\"benchmark\"}")
        .unwrap();
    w.finish().unwrap();
    started.elapsed().as_secs_f64()
}
