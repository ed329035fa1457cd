#[test]
fn dump() {
    let Ok(files) = std::env::var("DUMP") else { return };
    for f in files.split(',') {
        let raw = std::fs::read(f).unwrap();
        let mut c = palisade_mime::parse_message(&raw, &Default::default());
        c.text_body = c.text_body.map(|t| t.chars().take(200).collect());
        c.html_body = c.html_body.map(|t| t.chars().take(100).collect());
        println!("==== {f}\n{c:#?}");
    }
}
