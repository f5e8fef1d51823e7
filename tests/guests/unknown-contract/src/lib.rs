//! Built for `portico:action@9.9.0`, a version no host offers: loading it must be refused with a
//! message naming the version it was built for and the versions the host offers.

wit_bindgen::generate!({ path: "wit", world: "action-backend" });

struct Unknown;

impl Guest for Unknown {
    fn run() -> Result<String, String> {
        portico::action::log::emit("from the future");
        Ok(String::new())
    }
}

export!(Unknown);
