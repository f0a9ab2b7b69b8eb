#pragma once
#include <torch/torch.h>
#include <Eigen/Dense>
#include <QtTest/QtTest>
