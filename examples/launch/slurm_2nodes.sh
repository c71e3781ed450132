#!/usr/bin/env bash
# sbatch examples/launch/slurm_2nodes.sh examples/embed/retrieval_qwen_matryoshka.yaml
# Two nodes x 8 GPUs: mg-train passes --nnodes/--node-rank/--master-addr/--master-port to torchrun.
#SBATCH --job-name=mg-train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
set -euo pipefail
CONFIG=${1:?usage: sbatch slurm_2nodes.sh CONFIG.yaml [--key value ...]}
shift
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export MASTER_ADDR MASTER_PORT=${MASTER_PORT:-29500}
srun bash -c "mg-train $CONFIG $* --nnodes $SLURM_NNODES --node-rank \$SLURM_NODEID \
  --nproc-per-node 8 --master-addr $MASTER_ADDR --master-port $MASTER_PORT"
