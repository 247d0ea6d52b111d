#!/usr/bin/env bash
# fe2qc on a SLURM cluster: one MPI rank per core, fe2qc pins one thread per rank itself.
#
#   sbatch scripts/slurm_fe2qc.sh problem.toml [WORKERS]
#
# WORKERS: the ranks that only relax RVEs (default: 15 of every 16 ranks; the others hold the
# mesh). The ranks form groups of mesh ranks with their own workers (fe2qc run --groups,
# default min(mesh ranks, workers)), so no rank serves every RVE.
# Output: $FE2QC_OUTDIR, default results/<problem>_<job id> (relative to the submit folder).
# Restart: resubmitting with FE2QC_OUTDIR pointing at a folder that holds checkpoint.npz (or a
# requeue of this job: `#SBATCH --requeue`, `scontrol requeue`) continues from the last
# converged load step instead of starting again (fe2qc run --restart).
# Containers: FE2QC_CONTAINER=fe2qc.sif runs fe2qc inside Apptainer/Singularity (README,
# "Running on a cluster": the image's MPI must be ABI-compatible with the host's).
# Hybrid runs: --cpus-per-task=N gives every rank N threads (FE2QC_THREADS).
#SBATCH --job-name=fe2qc
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=32
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --output=fe2qc-%j.out
set -euo pipefail

problem=${1:?usage: sbatch scripts/slurm_fe2qc.sh problem.toml [WORKERS]}
ntasks=${SLURM_NTASKS:?not inside a SLURM allocation (run it with sbatch)}
workers=${2:-$(( ntasks - (ntasks + 15) / 16 ))}
outdir=${FE2QC_OUTDIR:-results/$(basename "$problem" .toml)_${SLURM_JOB_ID:-0}}
export FE2QC_THREADS=${SLURM_CPUS_PER_TASK:-1}

if [[ -f "$outdir/checkpoint.npz" ]]; then
    where=(--restart "$outdir")   # a requeued or resubmitted job continues
else
    where=(--outdir "$outdir")
fi
container=()
if [[ -n "${FE2QC_CONTAINER:-}" ]]; then
    container=(apptainer exec --bind "$PWD" "$FE2QC_CONTAINER")
fi
echo "fe2qc: $ntasks ranks ($workers RVE workers), $FE2QC_THREADS thread(s) per rank," \
     "output in $outdir" >&2
# --mpi: the PMI your MPI speaks (pmi2 for MPICH, the pip wheel's MPI; pmix for Open MPI)
exec srun --mpi="${FE2QC_SRUN_MPI:-pmi2}" --cpu-bind=cores "${container[@]}" \
    fe2qc run "$problem" --workers "$workers" "${where[@]}"
