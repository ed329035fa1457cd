use std::collections::BTreeMap;
#[test]
fn stats() {
    if std::env::var("STATS").is_err() { return }
    let root = "/work/shared/corpus";
    let manifest = std::fs::read_to_string(format!("{root}/MANIFEST.tsv")).unwrap();
    let mut feat_att: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let t0 = std::time::Instant::now();
    let mut slowest = (0u128, String::new());
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let raw = std::fs::read(format!("{root}/{}", cols[0])).unwrap();
        let t = std::time::Instant::now();
        let c = palisade_mime::parse_message(&raw, &Default::default());
        let el = t.elapsed().as_millis();
        if el > slowest.0 { slowest = (el, cols[0].to_string()); }
        for f in cols[5].split(',').chain(["ALL"]) {
            let e = feat_att.entry(f.to_string()).or_default();
            e.0 += 1;
            if !c.attachments.is_empty() { e.1 += 1; }
            if !c.privacy.crypto.is_empty() { e.2 += 1; }
        }
        if c.parse_error.is_some() || c.privacy.mime_depth_exceeded || c.text_body.is_none() {
            println!("{} err={:?} depth={} text={} html={} feats={}", cols[0], c.parse_error, c.privacy.mime_depth_exceeded, c.text_body.is_some(), c.html_body.is_some(), cols[5]);
        }
        if std::env::var("CRYPTO").is_ok() && (!c.privacy.crypto.is_empty() || cols[5].contains("pgp") || cols[5].contains("smime")) {
            println!("CRYPTO {} {:?} feats={} atts={:?}", cols[0], c.privacy.crypto, cols[5], c.attachments.iter().map(|a| (&a.content_type, &a.file_name)).collect::<Vec<_>>());
        }
    }
    for (f, (n, a, cr)) in feat_att { println!("{f:50} n={n:5} att={a:5} crypto={cr:5}"); }
    println!("total {:?} slowest {:?}", t0.elapsed(), slowest);
}
