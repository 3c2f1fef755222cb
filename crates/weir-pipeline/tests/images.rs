//! Image pipelines end to end on the embedded backends: pictures uploaded under `images/` of
//! the bundled config become thumbnails, a metadata document and an image record on the job;
//! hostile files are rejected with their reason, moved to `failed/`, alerted, and never reach
//! the dead-letter queue.

mod common;

use common::Harness;
use weir_core::JobStatus;
use weir_image::fixtures::{self, exif};

const OUT: &str = "weir-output";

fn exif_of(bytes: &[u8]) -> Option<exif::Exif> {
    exif::Reader::new().read_from_container(&mut std::io::Cursor::new(bytes)).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_photo_becomes_thumbnails_metadata_and_an_image_record() {
    let h = Harness::start(common::fast_config()).await;
    let photo = fixtures::jpeg(800, 600, Some(&fixtures::camera_exif(6, true)));
    let job = h.run("images/holiday/beach.jpg", photo.clone()).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.pipeline.as_deref(), Some("images"));

    let image = job.image.as_ref().expect("the job records its picture");
    assert_eq!((image.format.as_str(), image.width, image.height), ("JPEG", 800, 600));
    assert_eq!((image.display_width, image.display_height), (600, 800));
    assert_eq!(image.file_size, photo.len() as u64);
    let exif = image.exif.as_ref().unwrap();
    assert_eq!((exif.make.as_deref(), exif.orientation, exif.has_gps), (Some("Weirphone"), Some(6), true));
    assert_eq!(exif.gps, None);

    let prefix = "weir-input/images/holiday/beach.jpg";
    let expected = [("large", 450, 600), ("medium", 225, 300), ("small", 113, 150)];
    for ((name, w, h_), t) in expected.iter().zip(&image.thumbnails) {
        assert_eq!((t.name.as_str(), t.width, t.height), (*name, *w, *h_));
        let key = format!("thumbnails/{name}/{prefix}_{name}.jpg");
        assert_eq!(t.key, key);
        assert_eq!(job.output_keys[&format!("thumbnail_{name}")], key);
        let bytes = h.read(OUT, &key).await;
        assert_eq!(bytes.len() as u64, t.bytes);
        let (tw, th, _) = fixtures::read_jpeg(&bytes);
        assert_eq!((tw, th), (*w, *h_), "{key} is portrait, as the photo is shown");
        let e = exif_of(&bytes).expect("the camera's EXIF less the location");
        assert!(e.fields().all(|f| f.tag.context() != exif::Context::Gps), "{key} has GPS");
    }
    assert_eq!(image.smallest_thumbnail().unwrap().name, "small");

    // The metadata document is the job's image record.
    let metadata_key = format!("metadata/{prefix}.json");
    assert_eq!(job.output_keys["metadata"], metadata_key);
    let doc: weir_core::image::ImageSummary =
        serde_json::from_slice(&h.read(OUT, &metadata_key).await).unwrap();
    assert_eq!(&doc, image);
    assert_eq!(doc.source.as_ref().unwrap().job_id.as_deref(), Some(job.job_id.to_string().as_str()));

    // Archived; the success message describes the picture.
    assert!(h.exists("weir-archive", "images/holiday/beach.jpg"));
    assert!(!h.exists("weir-input", "images/holiday/beach.jpg"));
    let notes = h.notes.0.lock().unwrap().clone();
    let success = notes.iter().find(|n| n.topic == "success").expect("a success message");
    assert_eq!(success.payload["image"]["display_width"], 600);
    assert!(success.text.contains("small 113x150: thumbnails/small/"), "{}", success.text);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_decides_a_png_named_jpg_works_and_a_new_version_overwrites_its_outputs() {
    let h = Harness::start(common::fast_config()).await;
    let job = h.run("images/logo.jpg", fixtures::png_rgba(400, 200)).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let image = job.image.unwrap();
    assert_eq!((image.format.as_str(), image.mode.as_str()), ("PNG", "RGBA"));
    let small = "thumbnails/small/weir-input/images/logo.jpg_small.jpg";
    assert_eq!(fixtures::read_jpeg(&h.read(OUT, small).await).0, 150);

    // A new upload of the key: the same output keys, now holding the new picture's.
    let job = h.run("images/logo.jpg", fixtures::gif(100, 300, true)).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let image = job.image.unwrap();
    assert_eq!((image.format.as_str(), image.animated), ("GIF", true));
    assert_eq!(fixtures::read_jpeg(&h.read(OUT, small).await).1, 150, "{small} is the GIF's, portrait");
    let doc = h.json(OUT, "metadata/weir-input/images/logo.jpg.json").await;
    assert_eq!(doc["format"], "GIF");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_pictures_are_rejected_with_their_reason_and_never_dead_lettered() {
    let mut config = common::fast_config();
    config.pipelines[1].image.max_input_bytes = 64 << 10;
    let h = Harness::start(config).await;
    let photo = fixtures::jpeg(400, 300, None);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("images/lying.jpg", b"order_id,customer_name\n1,Ann\n".to_vec(), "not a picture weir reads"),
        ("images/empty.png", Vec::new(), "the file is empty"),
        ("images/cut.jpg", photo[..photo.len() / 2].to_vec(), "the JPEG file ends before its picture does"),
        ("images/bomb.png", fixtures::bomb_png(100_000, 100_000), "header says 100000 x 100000 pixels"),
        ("images/huge.jpg", [photo.clone(), vec![0; 100_000]].concat(), "(image.max_input_bytes)"),
    ];
    for (key, bytes, reason) in &cases {
        let job = h.run(key, bytes.clone()).await;
        assert_eq!(job.status, JobStatus::Rejected, "{key}: {job:?}");
        let error = job.error.as_deref().unwrap();
        assert!(error.contains(reason) && error.contains(key), "{key}: {error}");
        let failed = job.output_keys.get("failed").expect("moved to failed/");
        assert!(failed.ends_with(key), "{failed}");
        assert!(job.image.is_none() && !job.output_keys.contains_key("metadata"));
        assert!(!h.exists(OUT, &format!("metadata/weir-input/{key}.json")));
    }
    let alerts: Vec<_> = h.notes.0.lock().unwrap().iter().filter(|n| n.topic == "alerts").cloned().collect();
    assert_eq!(alerts.len(), cases.len());
    assert!(alerts.iter().all(|a| a.payload["event"] == "job_rejected"));

    // The worker is up, and nothing went to the dead-letter queue.
    let job = h.run("images/fine.jpg", photo).await;
    assert_eq!(job.status, JobStatus::Succeeded);
    let stats = h.engine.ports().queue.stats().await.unwrap();
    assert_eq!(stats.dead_letters, 0);
    assert!(h.engine.ports().queue.dlq_list(0).await.unwrap().is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_pictures_all_finish_and_data_files_still_go_to_the_data_pipeline() {
    let h = Harness::start(common::fast_config()).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(h.upload(&format!("images/burst/{i}.jpg"), fixtures::jpeg(1600, 1200, None)).await.job_id);
    }
    let csv = std::fs::read(common::samples().join("sales.csv")).unwrap();
    let data = h.run("raw/sales.csv", csv).await;
    assert_eq!((data.status, data.pipeline.as_deref()), (JobStatus::Succeeded, Some("sales")));
    assert!(data.image.is_none());
    for id in &ids {
        let job = h.wait(id).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
        assert_eq!(job.image.unwrap().thumbnails.len(), 3);
    }
    h.stop().await;
}
