"""What was sent and what becomes of it: the sending log (`log`), retry plans as pure
arithmetic (`plans`), handing retries over (`dispatch`) and the scheduler loop (`worker`)."""
