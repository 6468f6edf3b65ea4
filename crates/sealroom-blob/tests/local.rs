//! The local-files backend against a real directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::sync::Arc;

use aws_lc_rs::digest;
use sealroom_blob::{BlobError, BlobKey, BlobStore, ByteRange, LocalBlobStore, PutOptions};
use tokio::io::AsyncReadExt;

fn key(s: &str) -> BlobKey {
    BlobKey::parse(s).unwrap()
}

fn sha(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, b).as_ref());
    out
}

async fn read_all(store: &LocalBlobStore, k: &BlobKey, range: Option<ByteRange>) -> Vec<u8> {
    let mut r = store.get(k, range).await.unwrap();
    let mut v = Vec::new();
    r.reader.read_to_end(&mut v).await.unwrap();
    assert_eq!(v.len() as u64, r.length);
    v
}

fn tmp_files(root: &std::path::Path) -> usize {
    std::fs::read_dir(root.join(".tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn put_get_range_delete_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::in_data_dir(dir.path()).await.unwrap();
    assert_eq!(store.root(), dir.path().join("blobs"));
    // 1 MiB + 3 bytes: several read chunks.
    let data: Vec<u8> = (0..(1 << 20) + 3).map(|i| (i * 7 % 251) as u8).collect();
    let k = key("projects/p1/versions/v1/package.tar");
    let meta = store
        .put(&k, &mut data.as_slice(), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(meta.sha256, sha(&data));
    assert_eq!(meta.sha256_hex().len(), 64);
    assert_eq!(read_all(&store, &k, None).await, data);
    assert_eq!(store.size(&k).await.unwrap(), data.len() as u64);
    assert_eq!(
        read_all(
            &store,
            &k,
            Some(ByteRange {
                start: 10,
                end: Some(19)
            })
        )
        .await,
        &data[10..20]
    );
    let tail = read_all(
        &store,
        &k,
        Some(ByteRange {
            start: (1 << 20),
            end: None,
        }),
    )
    .await;
    assert_eq!(tail, &data[1 << 20..]);
    assert!(matches!(
        store
            .get(
                &k,
                Some(ByteRange {
                    start: data.len() as u64,
                    end: None
                })
            )
            .await,
        Err(BlobError::RangeNotSatisfiable { .. })
    ));

    // No clobbering unless asked.
    let e = store
        .put(&k, &mut &b"other"[..], PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, BlobError::AlreadyExists(_)), "{e}");
    assert_eq!(read_all(&store, &k, None).await, data);
    let m2 = store
        .put(
            &k,
            &mut &b"other"[..],
            PutOptions {
                overwrite: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(m2.size, 5);
    assert_eq!(read_all(&store, &k, None).await, b"other");

    store
        .put(&key("projects/p1/a"), &mut &b"a"[..], PutOptions::default())
        .await
        .unwrap();
    store
        .put(
            &key("projects/p2/b"),
            &mut &b"bb"[..],
            PutOptions::default(),
        )
        .await
        .unwrap();
    store
        .put(
            &key("projects/p10/c"),
            &mut &b"c"[..],
            PutOptions::default(),
        )
        .await
        .unwrap();
    let all: Vec<String> = store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key.to_string())
        .collect();
    assert_eq!(
        all,
        [
            "projects/p1/a",
            "projects/p1/versions/v1/package.tar",
            "projects/p10/c",
            "projects/p2/b"
        ]
    );
    let p1: Vec<String> = store
        .list("projects/p1/")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key.to_string())
        .collect();
    assert_eq!(p1, ["projects/p1/a", "projects/p1/versions/v1/package.tar"]);
    let p2 = store.list("projects/p2/").await.unwrap();
    assert_eq!((p2.len(), p2[0].size), (1, 2));
    assert!(store.list("nothing/here/").await.unwrap().is_empty());
    assert!(store.list("../etc/").await.is_err());

    assert!(store.delete(&k).await.unwrap());
    assert!(!store.delete(&k).await.unwrap());
    assert!(matches!(
        store.get(&k, None).await,
        Err(BlobError::NotFound(_))
    ));
    assert!(matches!(store.size(&k).await, Err(BlobError::NotFound(_))));
    assert_eq!(tmp_files(store.root()), 0);
}

#[tokio::test]
async fn rejected_uploads_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).await.unwrap();
    let k = key("x/y");
    let e = store
        .put(
            &k,
            &mut &b"hello"[..],
            PutOptions {
                expected_sha256: Some(sha(b"hullo")),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, BlobError::Mismatch { .. }), "{e}");
    let e = store
        .put(
            &k,
            &mut &[0u8; 100][..],
            PutOptions {
                max_size: Some(99),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, BlobError::TooLarge { limit: 99 }), "{e}");
    assert!(matches!(
        store.get(&k, None).await,
        Err(BlobError::NotFound(_))
    ));
    assert_eq!(tmp_files(dir.path()), 0);
    // A reader that fails part-way.
    struct Failing(usize);
    impl tokio::io::AsyncRead for Failing {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.0 == 0 {
                return std::task::Poll::Ready(Err(std::io::Error::other("connection reset")));
            }
            self.0 -= 1;
            buf.put_slice(&[1; 1000]);
            std::task::Poll::Ready(Ok(()))
        }
    }
    let e = store
        .put(&k, &mut Failing(3), PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, BlobError::Io { .. }), "{e}");
    assert!(matches!(
        store.get(&k, None).await,
        Err(BlobError::NotFound(_))
    ));
    assert_eq!(tmp_files(dir.path()), 0);
    let ok = store
        .put(
            &k,
            &mut &b"hello"[..],
            PutOptions {
                expected_sha256: Some(sha(b"hello")),
                max_size: Some(5),
                overwrite: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(ok.size, 5);
    // Leftover temporaries from a crash are removed on open.
    std::fs::write(dir.path().join(".tmp/crashed.part"), b"junk").unwrap();
    let _ = LocalBlobStore::open(dir.path()).await.unwrap();
    assert_eq!(tmp_files(dir.path()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalBlobStore::open(dir.path()).await.unwrap());
    let k = key("race/blob");
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8u8 {
        let store = store.clone();
        let k = k.clone();
        set.spawn(async move {
            let data = vec![i; 200_000];
            store
                .put(&k, &mut data.as_slice(), PutOptions::default())
                .await
                .map(|m| (i, m))
        });
    }
    let mut winners = Vec::new();
    while let Some(r) = set.join_next().await {
        match r.unwrap() {
            Ok((i, _)) => winners.push(i),
            Err(BlobError::AlreadyExists(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let mut r = store.get(&k, None).await.unwrap();
    let mut v = Vec::new();
    r.reader.read_to_end(&mut v).await.unwrap();
    assert_eq!(
        v,
        vec![winners[0]; 200_000],
        "content is exactly one upload, never a mix"
    );
    assert_eq!(tmp_files(dir.path()), 0);
}
