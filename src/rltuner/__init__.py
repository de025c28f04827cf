"""rltuner: fine-tune a melody LSTM with reinforcement learning and music-theory rewards."""

__version__ = "0.1.0"
