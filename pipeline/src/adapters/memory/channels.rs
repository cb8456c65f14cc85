use std::sync::Mutex;

use async_trait::async_trait;

use super::faults::Faults;
use crate::domain::{Destination, ErrorKind, PortError};
use crate::ports::{ChatResult, Delivery, Email, Messenger, Notifier};

/// Keeps every email it is given.
#[derive(Default)]
pub struct InMemoryNotifier {
    sent: Mutex<Vec<Email>>,
    faults: Faults,
}

impl InMemoryNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// The emails sent so far, in order.
    pub fn sent(&self) -> Vec<Email> {
        self.sent.lock().expect("sent lock").clone()
    }

    /// The next `times` emails fail with `kind`.
    pub fn fail(&self, kind: ErrorKind, times: usize) {
        self.faults.push(kind, times);
    }
}

#[async_trait]
impl Notifier for InMemoryNotifier {
    async fn notify(&self, email: &Email) -> Result<(), PortError> {
        self.faults.next("the email stand-in")?;
        self.sent.lock().expect("sent lock").push(email.clone());
        Ok(())
    }
}

/// Keeps every chat delivery it is given.
#[derive(Default)]
pub struct InMemoryMessenger {
    delivered: Mutex<Vec<(Destination, ChatResult)>>,
    keys: Mutex<Vec<String>>,
    faults: Faults,
}

impl InMemoryMessenger {
    pub fn new() -> Self {
        Self::default()
    }

    /// The deliveries made so far, in order.
    pub fn delivered(&self) -> Vec<(Destination, ChatResult)> {
        self.delivered.lock().expect("delivered lock").clone()
    }

    /// The next `times` deliveries fail with `kind`.
    pub fn fail(&self, kind: ErrorKind, times: usize) {
        self.faults.push(kind, times);
    }
}

#[async_trait]
impl Messenger for InMemoryMessenger {
    async fn deliver(&self, to: &Destination, result: &ChatResult, delivery: &Delivery) -> Result<(), PortError> {
        self.faults.next("the chat stand-in")?;
        let mut keys = self.keys.lock().expect("keys lock");
        if delivery.repeat && keys.contains(&delivery.key) {
            return Ok(());
        }
        keys.push(delivery.key.clone());
        self.delivered.lock().expect("delivered lock").push((to.clone(), result.clone()));
        Ok(())
    }
}
