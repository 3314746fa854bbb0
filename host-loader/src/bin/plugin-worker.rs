//! The worker executable: started by host-loader, one per worker process. See
//! `host_loader::worker::child` for what it does.

fn main() {
    host_loader::worker::child::main()
}
