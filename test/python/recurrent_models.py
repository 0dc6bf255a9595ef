"""Recurrent PyTorch models that more than one test exports."""
import torch


class LstmClassifier(torch.nn.Module):
    """Embedding -> nn.LSTM(batch_first=True) -> last hidden state -> Linear -> cross entropy."""

    def __init__(self, vocab, emb, hidden, classes):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, emb)
        self.lstm = torch.nn.LSTM(emb, hidden, batch_first=True)
        self.fc = torch.nn.Linear(hidden, classes)

    def forward(self, tokens, labels):
        _, (h, _) = self.lstm(self.emb(tokens))
        return torch.nn.functional.cross_entropy(self.fc(h[-1]), labels)
