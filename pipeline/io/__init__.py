"""What comes in and goes out as files: decoding videos and folders of frames, finding inputs, recognising dataset
roots and list files, read-ahead, and atomic writes."""
