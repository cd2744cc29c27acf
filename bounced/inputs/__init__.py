"""Where messages come from: files, directories, mbox, Maildir and standard input
(`sources`), and parsing many of them, in order, in worker processes (`batch`)."""
