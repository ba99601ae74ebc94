//! EEPROM-like elementary files: every write is atomic.

/// One elementary file: a capacity and the bytes written so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ef {
    capacity: usize,
    data: Vec<u8>,
}

/// Why a write did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteError {
    /// The offset is beyond the current length (no holes).
    Offset,
    /// Offset plus length exceeds the capacity.
    Capacity,
    /// Power was lost before the commit: the old content stays.
    Torn,
}

impl Ef {
    pub(crate) fn new(capacity: usize) -> Self {
        Ef {
            capacity,
            data: Vec::new(),
        }
    }

    pub(crate) fn contents(&self) -> &[u8] {
        &self.data
    }

    /// Whether `len` bytes fit the capacity.
    pub(crate) fn write_would_fit(&self, len: usize) -> Result<(), WriteError> {
        if len <= self.capacity {
            Ok(())
        } else {
            Err(WriteError::Capacity)
        }
    }

    /// Replaces the content wholesale (card-maintained files).
    pub(crate) fn set(&mut self, bytes: &[u8]) {
        self.data = bytes.to_vec();
    }

    /// Writes `bytes` at `offset` through a shadow copy that replaces the
    /// file in one step, as a card's transaction buffer does. With `tear`
    /// the power is lost before that step.
    pub(crate) fn write(
        &mut self,
        offset: usize,
        bytes: &[u8],
        tear: bool,
    ) -> Result<(), WriteError> {
        if offset > self.data.len() {
            return Err(WriteError::Offset);
        }
        let end = offset
            .checked_add(bytes.len())
            .filter(|e| *e <= self.capacity)
            .ok_or(WriteError::Capacity)?;
        let mut shadow = self.data.clone();
        shadow.resize(end.max(shadow.len()), 0);
        shadow
            .get_mut(offset..end)
            .ok_or(WriteError::Capacity)?
            .copy_from_slice(bytes);
        if tear {
            return Err(WriteError::Torn);
        }
        self.data = shadow;
        Ok(())
    }

    /// Cuts the file to `offset` bytes.
    pub(crate) fn erase_from(&mut self, offset: usize) -> Result<(), WriteError> {
        if offset > self.data.len() {
            return Err(WriteError::Offset);
        }
        self.data.truncate(offset);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_write_keeps_the_old_content() {
        let mut ef = Ef::new(8);
        ef.write(0, b"old!", false).unwrap();
        assert_eq!(ef.write(2, b"NEW!", true), Err(WriteError::Torn));
        assert_eq!(ef.contents(), b"old!");
        ef.write(2, b"NEW!", false).unwrap();
        assert_eq!(ef.contents(), b"olNEW!");
    }

    #[test]
    fn bounds() {
        let mut ef = Ef::new(4);
        assert_eq!(ef.write(1, b"x", false), Err(WriteError::Offset));
        assert_eq!(ef.write(0, b"12345", false), Err(WriteError::Capacity));
        ef.write(0, b"1234", false).unwrap();
        ef.erase_from(1).unwrap();
        assert_eq!(ef.contents(), b"1");
        assert_eq!(ef.erase_from(2), Err(WriteError::Offset));
    }
}
