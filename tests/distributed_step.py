"""One training step through train.py's own loader, batch norm and loss, with plain SGD (lr 1), so the
change in every weight is the gradient itself. Run as `python distributed_step.py DATA OUT` or under
`torchrun --nproc-per-node N`; rank 0 saves the stepped weights to OUT. Used by test_distributed.py."""
import sys

import torch

from ganprov.core.layout import discover
from ganprov.core.settings import TrainSettings
from ganprov.features import distributed
from ganprov.features.backbone import build_model
from ganprov.features.train import parallel, train_loader, train_one_epoch, training_rows

data, out = sys.argv[1:3]
settings = TrainSettings(data=data, weights="none", epochs=1, batch_size=64, image_size=32, workers=0)
world = distributed.start(torch.device("cpu"))
layout = discover(data)
train_set, _ = training_rows(layout, settings)
assert len(train_set) <= settings.batch_size, "one step: the whole training set in one global batch"
network, _ = build_model(len(layout.subsets), "none", seed=0)
model = parallel(network, torch.device("cpu"), world)
optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
torch.manual_seed(1)
train_one_epoch(model, torch.nn.CrossEntropyLoss(reduction="sum"), optimizer, torch.amp.GradScaler("cpu", enabled=False),
                train_loader(train_set, settings, torch.device("cpu"), world, 1), torch.device("cpu"), settings, {}, 1,
                world)
if world.is_main:
    torch.save(network.state_dict(), out)
del model, optimizer  # DDP holds the process group: released before finish() leaves it, as train() does
distributed.finish()
