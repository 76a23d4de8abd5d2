use kirana_sdk_macros::FromRow;

#[derive(FromRow)]
struct Notification {
    #[row]
    read: bool,
}

fn main() {}
