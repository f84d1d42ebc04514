"""ResNet-20 on CIFAR-10 with augmentation, a warm-up + cosine schedule and checkpoints.

    python examples/resnet_cifar10.py --data-dir CIFAR_DIR [--epochs 30] [--out runs/resnet20]

The same run from the command line:
    numcnn train --model resnet20 --dataset cifar10 --data-dir CIFAR_DIR --epochs 30 \
        --optimizer nesterov --lr 0.1 --weight-decay 5e-4 --schedule warmup --augment standard
"""

import argparse

import numpy as np

from numcnn import data, models, nn
from numcnn.train import Solver, schedules


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="runs/resnet20-cifar10")
    parser.add_argument("--subset", type=int, help="train on this many images (for a quick look)")
    parser.add_argument("--width", type=int, default=16)
    args = parser.parse_args(argv)

    X_train, y_train, X_test, y_test, classes = data.load_cifar10(args.data_dir)
    if args.subset:
        X_train, y_train = X_train[: args.subset], y_train[: args.subset]
    X_train, X_test = data.to_float_nchw(X_train), data.to_float_nchw(X_test)
    X_train, y_train, X_val, y_val = data.train_val_split(X_train, y_train, 0.1, seed=0)
    normalize = data.Normalize(*data.channel_stats(X_train))
    X_train, X_val, X_test = normalize(X_train), normalize(X_val), normalize(X_test)

    nn.manual_seed(0)
    w = args.width
    model = models.Classifier(models.build("resnet20", widths=(w, 2 * w, 4 * w)), reg=5e-4)
    augment = data.Compose([data.RandomCrop(32, padding=4), data.RandomHorizontalFlip()])
    solver = Solver(
        model,
        {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val},
        update_rule="nesterov",
        optim_config={"learning_rate": 0.1, "momentum": 0.9},
        schedule=schedules.warmup(min(1, args.epochs / 2), args.epochs, "cosine"),
        augment=augment,
        batch_size=128,
        num_epochs=args.epochs,
        seed=0,
        checkpoint_dir=args.out,
        print_every=100,
        num_val_samples=None,
    )
    solver.train()
    predictions = np.concatenate([model.loss(X_test[i : i + 500]).argmax(axis=1) for i in range(0, len(X_test), 500)])
    print(f"best validation accuracy {solver.best_val_acc:.4f}; test accuracy {np.mean(predictions == y_test):.4f}")
    return solver


if __name__ == "__main__":
    main()
