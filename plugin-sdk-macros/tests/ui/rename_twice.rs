use kirana_sdk_macros::FromRow;

#[derive(FromRow)]
struct Notification {
    #[row(rename = "is_read")]
    #[row(rename = "read_flag")]
    read: bool,
}

fn main() {}
